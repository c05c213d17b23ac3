"""Jobs: assignment books a GPU through the ordinary booking path; the miner's result
settles it (used time paid, the rest refunded), its failure refunds the client in full."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from aitbc.auth.principal import Principal
from aitbc.bookings import lifecycle, outages
from aitbc.bookings import service as bookings
from aitbc.config import Settings
from aitbc.errors import Conflict, NotFound, PaymentRequired, TooEarly
from aitbc.gpus.matching import Constraints, candidates
from aitbc.gpus.naming import model_key
from aitbc.jobs import wakeup
from aitbc.jobs.schemas import (
    ENDED,
    JobConstraintsPublic,
    JobCreate,
    JobOutcome,
    JobPublic,
    MinerJob,
    Receipt,
)
from aitbc.kit.attempt import OutOfFunds, attempt
from aitbc.kit.clock import hours_from_seconds
from aitbc.kit.hours import seconds_from_hours
from aitbc.kit.ids import new_id
from aitbc.kit.money import from_units, to_units
from aitbc.models import Booking, Gpu, Job
from aitbc.store.conn import SessionConn, drive

LIVE = ("queued", "assigned", "running")
# The time-to-live bounds the wait for a GPU and a miner; a job the miner has started runs
# until its result, its failure or the end of its booking.
WAITING = ("queued", "assigned")


def effective_state(job: Job, now: datetime) -> str:
    if job.state in WAITING and now >= job.expires_at:
        return "expired"
    return job.state


def _constraints(job: Job) -> JobConstraintsPublic:
    return JobConstraintsPublic(
        gpu_model=job.gpu_model_key,
        memory_min_gb=job.memory_min_gb,
        ai_model=job.ai_model_key,
        region=job.region,
        max_price_per_hour=None if job.max_price_units is None else from_units(job.max_price_units),
        cuda=job.cuda_min,
    )


def _cost_units(booking: Booking | None, now: datetime) -> int:
    return 0 if booking is None else lifecycle.charged_units(booking, now)


def to_public(job: Job, booking: Booking | None, now: datetime) -> JobPublic:
    return JobPublic(
        job_id=job.id,
        state=effective_state(job, now),  # type: ignore[arg-type]
        type=job.job_type,
        client_id=job.client_id,
        constraints=_constraints(job),
        duration_hours=hours_from_seconds(job.duration_seconds),
        gpu_id=job.gpu_id,
        miner_id=job.miner_id,
        assigned_miner_id=job.miner_id,
        booking_id=job.booking_id,
        cost=from_units(_cost_units(booking, now)),
        result=job.result,
        metrics=job.metrics,
        error=job.error,
        created_at=job.created_at,
        requested_at=job.created_at,
        expires_at=job.expires_at,
        assigned_at=job.assigned_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _with_booking(session: Session, job: Job) -> tuple[Job, Booking | None]:
    booking = None if job.booking_id is None else session.get(Booking, job.booking_id)
    return job, booking


def _cuda_at_least(found: str | None, wanted: str) -> bool:
    def parts(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", version)[:3])

    return found is not None and parts(found) >= parts(wanted)


def try_assign(
    session: Session, job: Job, *, now: datetime, settings: Settings, miner_id: str | None = None
) -> bool:
    """Book the best matching GPU for the job (see gpus.matching for the rule)."""
    constraints = Constraints(
        gpu_model_key=job.gpu_model_key,
        memory_min_gb=job.memory_min_gb,
        ai_model_key=job.ai_model_key,
        region=job.region,
        max_price_units=job.max_price_units,
        miner_id=miner_id,
    )
    wanted = bookings.BookingRequest(
        gpu_id="",
        client_id=job.client_id,
        seconds=job.duration_seconds,
        job_id=job.id,
        max_price_units=job.max_price_units,
        max_cost_units=job.payment_cap_units,
    )
    tried: set[str] = set()
    conn = SessionConn(session)
    while found := drive(
        candidates(
            conn,
            constraints=constraints,
            now=now,
            heartbeat_timeout=settings.heartbeat_timeout_seconds,
            exclude=tried,
        )
    ):
        if job.cuda_min is not None:
            versions = dict(
                session.execute(select(Gpu.id, Gpu.cuda_version).where(Gpu.id.in_(found))).all()
            )
            tried.update(g for g in found if not _cuda_at_least(versions.get(g), job.cuda_min))
            found = [g for g in found if g not in tried]
        for gpu_id in found:
            tried.add(gpu_id)
            booked = drive(
                attempt(
                    conn,
                    lambda: bookings.book(
                        conn,
                        replace(wanted, gpu_id=gpu_id),  # noqa: B023 (called at once)
                        now=now,
                        settings=settings,
                    ),
                )
            )
            if booked is not None:
                job.state, job.assigned_at = "assigned", now
                job.gpu_id, job.miner_id = gpu_id, booked.booking.miner_id
                job.booking_id = booked.booking.id
                session.flush()
                wakeup.job_assigned(session, booked.booking.miner_id)
                return True
    return False


def submit(
    session: Session, *, client_id: str, body: JobCreate, now: datetime, settings: Settings
) -> JobPublic:
    c = body.constraints
    hours = body.duration_hours if body.duration_hours is not None else settings.job_default_hours
    kind = body.payload.get("type")
    job = Job(
        id=new_id("job"),
        client_id=client_id,
        payload=body.payload,
        gpu_model_key=model_key(c.gpu_model) if c.gpu_model else None,
        memory_min_gb=c.memory_min_gb,
        ai_model_key=model_key(c.ai_model) if c.ai_model else None,
        region=c.region,
        max_price_units=None if c.max_price_per_hour is None else to_units(c.max_price_per_hour),
        duration_seconds=seconds_from_hours(hours, settings.max_booking_hours),
        job_type=kind[:64] if isinstance(kind, str) else None,
        payment_cap_units=None if body.payment_amount is None else to_units(body.payment_amount),
        cuda_min=c.cuda,
        state="queued",
        created_at=now,
        expires_at=now + timedelta(seconds=body.ttl_seconds),
    )
    session.add(job)
    session.flush()
    try:
        try_assign(session, job, now=now, settings=settings)
    except OutOfFunds as exc:
        raise PaymentRequired(f"Cannot pay for this job: {exc}") from exc
    return to_public(*_with_booking(session, job), now)


def _end_booking(
    session: Session,
    job: Job,
    *,
    now: datetime,
    settings: Settings,
    refund: bool = False,
    refund_after_end: bool = False,
) -> None:
    """End the job's booking now: used time paid, or with ``refund`` everything back to the
    client (for a booking that already ran out, only with ``refund_after_end``)."""
    if job.booking_id is None:
        return
    drive(
        bookings.end_booking(
            SessionConn(session),
            booking_id=job.booking_id,
            now=now,
            fee_bps=settings.platform_fee_bps,
            policy=settings.outage_policy,
            full_refund=refund,
            refund_after_end=refund_after_end,
        )
    )


def _locked_job(session: Session, job_id: str, *, skip_locked: bool = False) -> Job | None:
    """Lock a job in the project's lock order: its GPU first (if it has one), then the job.
    With ``skip_locked``, None when another transaction holds either."""
    row = session.execute(select(Job.id, Job.gpu_id).where(Job.id == job_id)).first()
    if row is None:
        raise NotFound(f"No job {job_id!r}.", code="job_not_found")
    if row.gpu_id is not None:
        locked_gpu = session.scalar(
            select(Gpu.id).where(Gpu.id == row.gpu_id).with_for_update(skip_locked=skip_locked)
        )
        if locked_gpu is None:
            return None
    job = session.scalars(
        select(Job)
        .where(Job.id == job_id)
        .with_for_update(skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    ).first()
    if job is not None and job.gpu_id != row.gpu_id:
        raise Conflict("The job changed while it was being read; retry.", code="conflict")
    return job


def _job_for_change(session: Session, job_id: str) -> Job:
    job = _locked_job(session, job_id)
    assert job is not None
    return job


def jobs_to_expire(session: Session, *, now: datetime, limit: int = 200) -> list[str]:
    query = select(Job.id).where(Job.state.in_(WAITING), Job.expires_at <= now)
    return list(session.scalars(query.order_by(Job.expires_at).limit(limit)))


def expire_one(session: Session, *, job_id: str, now: datetime, settings: Settings) -> None:
    """A job that waited past its time-to-live: expired, its booking refunded in full."""
    job = _locked_job(session, job_id, skip_locked=True)
    if job is None or job.state not in WAITING or now < job.expires_at:
        return
    # It never ran: nothing is charged.
    _end_booking(session, job, now=now, settings=settings, refund=True, refund_after_end=True)
    job.state, job.finished_at = "expired", job.expires_at
    session.flush()


def queued_jobs(session: Session, *, now: datetime, limit: int = 50) -> list[str]:
    query = select(Job.id).where(Job.state == "queued", Job.expires_at > now)
    return list(session.scalars(query.order_by(Job.created_at, Job.id).limit(limit)))


def assign_one(
    session: Session,
    *,
    job_id: str,
    now: datetime,
    settings: Settings,
    miner_id: str | None = None,
) -> bool:
    """Book a GPU for one queued job. The job's row lock makes two sweepers (or a sweeper
    and a miner's poll) unable to book twice for it."""
    job = _locked_job(session, job_id, skip_locked=True)
    if job is None or job.state != "queued" or now >= job.expires_at:
        return False
    try:
        return try_assign(session, job, now=now, settings=settings, miner_id=miner_id)
    except OutOfFunds:
        return False


def poll(
    session: Session, *, miner_id: str, now: datetime, settings: Settings, claim: bool = False
) -> MinerJob | None:
    """Hand the miner its oldest assigned job (assigning queued ones first). With ``claim``
    the hand-over holds only once the miner confirms it (``confirm``)."""
    for job_id in queued_jobs(session, now=now, limit=10):
        assign_one(session, job_id=job_id, now=now, settings=settings, miner_id=miner_id)
    job = session.scalars(
        select(Job)
        .join(Booking, Booking.id == Job.booking_id)
        .where(
            Job.miner_id == miner_id,
            Job.state == "assigned",
            Job.expires_at > now,
            Booking.status == "open",
            Booking.end_time > now,
        )
        .order_by(Job.assigned_at, Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if job is None:
        return None
    job.state, job.started_at = "running", now
    if claim:
        job.claim_expires_at = now + timedelta(seconds=settings.job_claim_seconds)
    booking = session.get(Booking, job.booking_id)
    assert booking is not None and job.gpu_id is not None and job.booking_id is not None
    session.flush()
    return MinerJob(
        job_id=job.id,
        gpu_id=job.gpu_id,
        booking_id=job.booking_id,
        payload=job.payload,
        constraints=_constraints(job),
        duration_hours=hours_from_seconds(job.duration_seconds),
        expires_at=job.expires_at,
        booking_ends_at=booking.end_time,
        claim_expires_at=job.claim_expires_at,
    )


def give_back(session: Session, *, job_id: str, miner_id: str, now: datetime) -> None:
    """A job handed to the miner that never reached it: assigned again, for the miner's
    next poll, and the time since it was handed over refunded (nobody ran it)."""
    job = _locked_job(session, job_id)
    if job is not None and job.miner_id == miner_id and job.state == "running":
        _hand_back(session, job, now=now)


def _hand_back(session: Session, job: Job, *, now: datetime) -> None:
    """The work of ``give_back`` on a job this transaction has locked."""
    assert job.miner_id is not None
    if job.booking_id is not None and job.started_at is not None:
        drive(
            outages.refund_unserved(
                SessionConn(session), booking_id=job.booking_id, since=job.started_at, now=now
            )
        )
    job.state, job.started_at, job.claim_expires_at = "assigned", None, None
    session.flush()
    wakeup.job_assigned(session, job.miner_id)


def confirm(session: Session, *, job_id: str, miner_id: str, now: datetime) -> JobPublic:
    """The miner has the job it claimed: the hand-over holds (confirming twice is fine)."""
    job = _miners_running_job(session, job_id, miner_id, now)
    if job.state != "running":  # its claim ran out and it went back: poll for it again
        raise Conflict("This job went back to be polled for again.", code="job_not_running")
    job.claim_expires_at = None
    session.flush()
    return to_public(*_with_booking(session, job), now)


def expired_claims(session: Session, *, now: datetime, limit: int = 200) -> list[str]:
    """Jobs whose claim ran out unconfirmed."""
    query = select(Job.id).where(Job.state == "running", Job.claim_expires_at <= now)
    return list(session.scalars(query.order_by(Job.claim_expires_at).limit(limit)))


def release_claim(session: Session, *, job_id: str, now: datetime) -> None:
    """The sweeper's part: a claim that ran out unconfirmed gives its job back. Checked under
    the job's lock, so a confirmation that committed first keeps the job with its miner."""
    job = _locked_job(session, job_id, skip_locked=True)
    if (
        job is not None
        and job.state == "running"
        and job.claim_expires_at is not None
        and job.claim_expires_at <= now
    ):
        _hand_back(session, job, now=now)


def _miners_running_job(session: Session, job_id: str, miner_id: str, now: datetime) -> Job:
    job = _job_for_change(session, job_id)
    if job.miner_id != miner_id:
        raise NotFound(f"No job {job_id!r} assigned to you.", code="job_not_found")
    state = effective_state(job, now)
    if state not in ("assigned", "running"):
        raise Conflict(f"This job is {state}.", code="job_not_running")
    return job


def complete(
    session: Session,
    *,
    job_id: str,
    miner_id: str,
    result: Any,
    now: datetime,
    settings: Settings,
    metrics: dict[str, Any] | None = None,
) -> JobPublic:
    job = _miners_running_job(session, job_id, miner_id, now)
    _end_booking(session, job, now=now, settings=settings)
    job.state, job.result, job.finished_at = "completed", result, now
    job.metrics = metrics
    session.flush()
    return to_public(*_with_booking(session, job), now)


def fail(
    session: Session,
    *,
    job_id: str,
    miner_id: str,
    error: str,
    now: datetime,
    settings: Settings,
    metrics: dict[str, Any] | None = None,
) -> JobPublic:
    job = _miners_running_job(session, job_id, miner_id, now)
    # The provider failed it; a job that had started and outlived its booking was served.
    started = job.state == "running"
    _end_booking(
        session, job, now=now, settings=settings, refund=True, refund_after_end=not started
    )
    job.state, job.error, job.finished_at = "failed", error, now
    job.metrics = metrics
    session.flush()
    return to_public(*_with_booking(session, job), now)


def cancel(
    session: Session, *, job_id: str, principal: Principal, now: datetime, settings: Settings
) -> JobPublic:
    job = _job_for_change(session, job_id)
    if principal.role != "admin" and job.client_id != principal.owner_id:
        raise NotFound(f"No job {job_id!r}.", code="job_not_found")
    state = effective_state(job, now)
    if state not in LIVE:
        raise Conflict(f"This job is {state}.", code="job_finished")
    # Used time is paid for a job that started; one that never did costs nothing.
    unserved = job.state == "assigned"
    _end_booking(
        session, job, now=now, settings=settings, refund=unserved, refund_after_end=unserved
    )
    job.state, job.finished_at = "cancelled", now
    session.flush()
    return to_public(*_with_booking(session, job), now)


def _visible(session: Session, job_id: str, principal: Principal) -> Job:
    job = session.get(Job, job_id)
    visible = job is not None and (
        principal.role == "admin" or principal.owner_id in (job.client_id, job.miner_id)
    )
    if job is None or not visible:
        raise NotFound(f"No job {job_id!r}.", code="job_not_found")
    return job


def get(session: Session, *, job_id: str, principal: Principal, now: datetime) -> JobPublic:
    return to_public(*_with_booking(session, _visible(session, job_id, principal)), now)


def outcome(session: Session, *, job_id: str, principal: Principal, now: datetime) -> JobOutcome:
    """The job's result once it has ended; 425 (too early) before."""
    job = _visible(session, job_id, principal)
    state = effective_state(job, now)
    if state not in ENDED:
        raise TooEarly(f"The job is {state}; its result comes when it ends.", code="job_not_ended")
    return JobOutcome(
        job_id=job.id,
        state=state,  # type: ignore[arg-type]
        result=job.result,
        error=job.error,
        finished_at=job.finished_at or (job.expires_at if state == "expired" else None),
    )


@dataclass(frozen=True, slots=True)
class JobFilters:
    state: str | None = None
    job_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_cost_units: int | None = None


def list_jobs(
    session: Session,
    *,
    principal: Principal,
    now: datetime,
    limit: int,
    offset: int,
    filters: JobFilters = JobFilters(),
) -> list[JobPublic]:
    query = select(Job, Booking).outerjoin(Booking, Booking.id == Job.booking_id)
    if principal.role == "client":
        query = query.where(Job.client_id == principal.owner_id)
    elif principal.role == "miner":
        query = query.where(Job.miner_id == principal.owner_id)
    f = filters
    if f.state == "expired":
        query = query.where(
            or_(Job.state == "expired", and_(Job.state.in_(WAITING), Job.expires_at <= now))
        )
    elif f.state in WAITING:
        query = query.where(Job.state == f.state, Job.expires_at > now)
    elif f.state is not None:
        query = query.where(Job.state == f.state)
    if f.job_type is not None:
        query = query.where(Job.job_type == f.job_type)
    if f.since is not None:
        query = query.where(Job.created_at >= f.since)
    if f.until is not None:
        query = query.where(Job.created_at < f.until)
    if f.min_cost_units is not None:
        query = query.where(Booking.charged_units >= f.min_cost_units)
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit).offset(offset)
    return [to_public(job, booking, now) for job, booking in session.execute(query)]


def receipt(job: Job, booking: Booking | None, gpu: Gpu | None, now: datetime) -> Receipt:
    charged = _cost_units(booking, now)
    seconds = 0
    if booking is not None:
        ended = lifecycle.ended_at(booking, now) or now
        seconds = max(0, lifecycle.used_seconds(booking, ended) - booking.outage_seconds)
    return Receipt(
        job_id=job.id,
        state=effective_state(job, now),  # type: ignore[arg-type]
        type=job.job_type,
        gpu_id=job.gpu_id,
        gpu_model=None if gpu is None else gpu.model,
        miner_id=job.miner_id,
        booking_id=job.booking_id,
        started_at=job.started_at,
        finished_at=job.finished_at,
        seconds_charged=seconds,
        price_per_hour=None if booking is None else from_units(booking.price_units),
        cost=from_units(charged),
        refunded=from_units(
            0 if booking is None else booking.refunded_units + booking.outage_refund_units
        ),
    )


def job_receipt(session: Session, *, job_id: str, principal: Principal, now: datetime) -> Receipt:
    job, booking = _with_booking(session, _visible(session, job_id, principal))
    gpu = None if job.gpu_id is None else session.get(Gpu, job.gpu_id)
    return receipt(job, booking, gpu, now)


def receipts(
    session: Session, *, now: datetime, limit: int, job_id: str | None, state: str | None
) -> list[Receipt]:
    """Receipts of jobs that have ended (the explorer: public, no payloads or results)."""
    query = (
        select(Job, Booking, Gpu)
        .outerjoin(Booking, Booking.id == Job.booking_id)
        .outerjoin(Gpu, Gpu.id == Job.gpu_id)
        .where(Job.state.in_(ENDED))
    )
    if job_id is not None:
        query = query.where(Job.id == job_id)
    if state is not None:
        query = query.where(Job.state == state)
    query = query.order_by(Job.finished_at.desc(), Job.id.desc()).limit(limit)
    return [receipt(job, booking, gpu, now) for job, booking, gpu in session.execute(query)]
