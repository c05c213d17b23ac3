"""Jobs: assignment books a GPU through the ordinary booking path; the miner's result
settles it (used time paid, the rest refunded), its failure refunds the client in full."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from aitbc.auth.principal import Principal
from aitbc.bookings import lifecycle, outages
from aitbc.bookings import service as bookings
from aitbc.bookings.preemption import INTERRUPTIBLE, ON_DEMAND
from aitbc.bookings.records import BookingRecord
from aitbc.config import Settings
from aitbc.errors import Conflict, NotFound, PaymentRequired, TooEarly
from aitbc.gpus.matching import Constraints
from aitbc.gpus.naming import wanted_key
from aitbc.jobs import announce, wakeup
from aitbc.jobs import queries as q
from aitbc.jobs.queries import JobRecord
from aitbc.kit.ids import new_id
from aitbc.store.conn import Conn
from aitbc.store.query import built
from aitbc.store.rounds import Rounds
from aitbc.store.values import as_time

ENDED = ("completed", "failed", "expired", "cancelled")
LIVE = ("queued", "assigned", "running")
# The time-to-live bounds the wait for a GPU and a miner; a job the miner has started runs
# until its result, its failure or the end of its booking.
WAITING = ("queued", "assigned")


def effective_state(job: JobRecord, now: datetime) -> str:
    if job.state in WAITING and now >= job.expires_at:
        return "expired"
    return job.state


def _served(job: JobRecord, booking: BookingRecord | None) -> BookingRecord | None:
    """The job's booking, unless it has served the job nothing: the job still waits for its
    miner (the booking will end refunded whole), or it ended charging nothing."""
    if booking is None or job.state == "assigned":
        return None
    if booking.status != "open" and booking.charged_units == 0:
        return None
    return booking


def cost_units(job: JobRecord, booking: BookingRecord | None, now: datetime) -> int:
    """Charged for the job so far."""
    served = _served(job, booking)
    return 0 if served is None else lifecycle.charged_units(served, now)


def seconds_charged(job: JobRecord, booking: BookingRecord | None, now: datetime) -> int:
    """Seconds of GPU time paid for (offline time refunded is not)."""
    served = _served(job, booking)
    if served is None:
        return 0
    ended = lifecycle.ended_at(served, now) or now
    return max(0, lifecycle.used_seconds(served, ended) - served.outage_seconds)


@dataclass(frozen=True, slots=True)
class Job:
    """A job with its booking (None before one is made), and its GPU's model for receipts."""

    job: JobRecord
    booking: BookingRecord | None
    gpu_model: str | None = None


@dataclass(frozen=True, slots=True)
class JobRequest:
    client_id: str
    payload: dict[str, Any]
    seconds: int
    ttl_seconds: int
    gpu_model: str | None = None
    memory_min_gb: int | None = None
    ai_model: str | None = None
    region: str | None = None
    max_price_units: int | None = None
    payment_cap_units: int | None = None
    cuda_min: str | None = None
    bid_units: int | None = None  # interruptible, at this bid per hour


@dataclass(frozen=True, slots=True)
class Handed:
    """A job handed to its miner by a poll."""

    job: JobRecord
    booking_ends_at: datetime


async def _with_booking(conn: Conn, job: JobRecord) -> Job:
    if job.booking_id is None:
        return Job(job, None)
    return Job(job, (await q.bookings_by_id(conn, [job.booking_id])).get(job.booking_id))


def _cuda_at_least(found: str | None, wanted: str) -> bool:
    def parts(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", version)[:3])

    return found is not None and parts(found) >= parts(wanted)


async def try_assign(
    conn: Conn, job: JobRecord, *, now: datetime, settings: Settings, miner_id: str | None = None
) -> bool:
    """Book the best matching GPU for the job (see gpus.matching for the rule)."""
    constraints = Constraints(
        gpu_model_key=job.gpu_model_key,
        memory_min_gb=job.memory_min_gb,
        ai_model_key=job.ai_model_key,
        region=job.region,
        max_price_units=job.max_price_units,
        miner_id=miner_id,
        bid_units=job.bid_units,
        seconds=job.duration_seconds,
    )
    wanted = bookings.BookingRequest(
        gpu_id="",
        client_id=job.client_id,
        seconds=job.duration_seconds,
        job_id=job.id,
        max_price_units=job.max_price_units,
        max_cost_units=job.payment_cap_units,
        rental_type=ON_DEMAND if job.bid_units is None else INTERRUPTIBLE,
        bid_units=job.bid_units,
    )
    cuda_min = job.cuda_min

    async def cuda_fits(conn: Conn, found: list[str]) -> list[str]:
        assert cuda_min is not None
        marks = ", ".join(f"${i}" for i in range(1, len(found) + 1))
        rows = await conn.fetch_values(built(q.CUDA_VERSIONS.format(marks)), *found)
        versions = {gpu_id: version for gpu_id, version in rows}
        return [g for g in found if _cuda_at_least(versions.get(g), cuda_min)]

    booked = await bookings.book_first(
        conn, constraints, wanted, now=now, settings=settings, tried=set(),
        fits=None if cuda_min is None else cuda_fits,
    )  # fmt: skip
    if booked is None:
        return False
    b = booked.booking
    job.state, job.assigned_at = "assigned", now
    job.gpu_id, job.miner_id, job.booking_id = b.gpu_id, b.miner_id, b.id
    await job.save(conn, "state", "assigned_at", "gpu_id", "miner_id", "booking_id")
    await wakeup.job_assigned(conn, b.miner_id)
    announce.job(conn, "assigned", job, now=now)
    return True


async def submit(conn: Conn, asked: JobRequest, *, now: datetime, settings: Settings) -> Job:
    kind = asked.payload.get("type")
    job = JobRecord(
        id=new_id("job"),
        client_id=asked.client_id,
        payload=asked.payload,
        gpu_model_key=wanted_key(asked.gpu_model),
        memory_min_gb=asked.memory_min_gb,
        ai_model_key=wanted_key(asked.ai_model),
        region=asked.region,
        max_price_units=asked.max_price_units,
        duration_seconds=asked.seconds,
        job_type=kind[:64] if isinstance(kind, str) else None,
        payment_cap_units=asked.payment_cap_units,
        cuda_min=asked.cuda_min,
        bid_units=asked.bid_units,
        state="queued",
        gpu_id=None,
        miner_id=None,
        booking_id=None,
        result=None,
        metrics=None,
        error=None,
        created_at=now,
        expires_at=now + timedelta(seconds=asked.ttl_seconds),
        assigned_at=None,
        started_at=None,
        finished_at=None,
        claim_expires_at=None,
    )
    await job.insert(conn)
    announce.job(conn, "queued", job, now=now)
    try:
        await try_assign(conn, job, now=now, settings=settings)
    except bookings.OutOfFunds as exc:
        raise PaymentRequired(f"Cannot pay for this job: {exc}") from exc
    return await _with_booking(conn, job)


async def _end_booking(
    conn: Conn,
    job: JobRecord,
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
    await bookings.end_booking(
        conn,
        booking_id=job.booking_id,
        now=now,
        fee_bps=settings.platform_fee_bps,
        policy=settings.outage_policy,
        full_refund=refund,
        refund_after_end=refund_after_end,
    )


async def _locked_job(conn: Conn, job_id: str, *, skip_locked: bool = False) -> JobRecord | None:
    """Lock a job in the project's lock order: its GPU first (if it has one), then the job.
    With ``skip_locked``, None when another transaction holds either."""
    row = await conn.fetchrow(q.JOB_GPU, job_id)
    if row is None:
        raise NotFound(f"No job {job_id!r}.", code="job_not_found")
    gpu_id = row["gpu_id"]
    if gpu_id is not None:
        lock_gpu = q.GPU_LOCKED_OR_SKIP if skip_locked else q.GPU_LOCKED
        if await conn.fetchrow(lock_gpu, gpu_id) is None:
            return None
    found = await conn.fetchrow(q.JOB_LOCKED_OR_SKIP if skip_locked else q.JOB_LOCKED, job_id)
    if found is None:
        return None
    job = JobRecord.from_row(found)
    if job.gpu_id != gpu_id:
        raise Conflict("The job changed while it was being read; retry.", code="conflict")
    return job


async def _job_for_change(conn: Conn, job_id: str) -> JobRecord:
    job = await _locked_job(conn, job_id)
    assert job is not None
    return job


async def jobs_to_expire(conn: Conn, *, now: datetime, limit: int = 200) -> list[str]:
    return [row[0] for row in await conn.fetch_values(q.TO_EXPIRE, now, limit)]


async def expire_one(conn: Conn, *, job_id: str, now: datetime, settings: Settings) -> None:
    """A job that waited past its time-to-live: expired, its booking refunded in full."""
    job = await _locked_job(conn, job_id, skip_locked=True)
    if job is None or job.state not in WAITING or now < job.expires_at:
        return
    # It never ran: nothing is charged.
    await _end_booking(conn, job, now=now, settings=settings, refund=True, refund_after_end=True)
    job.state, job.finished_at = "expired", job.expires_at
    await job.save(conn, "state", "finished_at")
    announce.job(conn, "expired", job, now=now)


async def unreported_jobs(
    conn: Conn, *, now: datetime, settings: Settings, limit: int = 200
) -> list[str]:
    """Running jobs whose booking ended more than the grace for a result ago."""
    cutoff = now - timedelta(seconds=settings.job_result_grace_seconds)
    return [row[0] for row in await conn.fetch_values(q.UNREPORTED, cutoff, limit)]


async def fail_unreported(conn: Conn, *, job_id: str, now: datetime, settings: Settings) -> None:
    """A job its miner never reported on, though its booking ended the grace ago: failed,
    so its client is not left waiting (a miner that lost it, an agent too old to stop it at
    the booking's end). The booking stays paid, as for a failure reported after its end."""
    job = await _locked_job(conn, job_id, skip_locked=True)
    if job is None or job.state != "running" or job.booking_id is None:
        return
    grace = settings.job_result_grace_seconds
    end = await conn.fetchval(q.BOOKING_END, job.booking_id)
    if end is None or as_time(end) + timedelta(seconds=grace) > now:
        return
    error = f"no_result: its miner reported nothing within {grace} s of the booking's end"
    await _failed(conn, job, error=error, metrics=job.metrics, now=now, settings=settings)


def queued_rounds() -> Rounds:
    """The queued jobs a sweep tries to assign, a page at a time (``Rounds``): jobs that no
    GPU can serve never keep the others from being tried."""
    return Rounds(q.QUEUED_AFTER)


async def assign_one(
    conn: Conn,
    *,
    job_id: str,
    now: datetime,
    settings: Settings,
    miner_id: str | None = None,
) -> bool:
    """Book a GPU for one queued job. The job's row lock makes two sweepers (or a sweeper
    and a miner's poll) unable to book twice for it."""
    job = await _locked_job(conn, job_id, skip_locked=True)
    if job is None or job.state != "queued" or now >= job.expires_at:
        return False
    try:
        return await try_assign(conn, job, now=now, settings=settings, miner_id=miner_id)
    except bookings.OutOfFunds:
        return False


async def poll(
    conn: Conn, *, miner_id: str, now: datetime, settings: Settings, claim: bool = False
) -> Handed | None:
    """Hand the miner its oldest assigned job (assigning queued ones first). With ``claim``
    the hand-over holds only once the miner confirms it (``confirm``)."""
    for (job_id,) in await conn.fetch_values(q.QUEUED_FOR_MINER, now, 10, miner_id):
        await assign_one(conn, job_id=job_id, now=now, settings=settings, miner_id=miner_id)
    row = await conn.fetchrow(q.NEXT_FOR_MINER, miner_id, now)
    if row is None:
        return None
    job = JobRecord.from_row(row)
    job.state, job.started_at = "running", now
    # A claim is this hand-over's alone: one left from an earlier one must not take the job
    # back from a miner that asked for none.
    job.claim_expires_at = now + timedelta(seconds=settings.job_claim_seconds) if claim else None
    await job.save(conn, "state", "started_at", "claim_expires_at")
    return Handed(job, as_time(row["booking_ends_at"]))


async def give_back(conn: Conn, *, job_id: str, miner_id: str, now: datetime) -> None:
    """A job handed to the miner that never reached it: assigned again, for the miner's
    next poll, and the time since it was handed over refunded (nobody ran it)."""
    job = await _locked_job(conn, job_id)
    if job is not None and job.miner_id == miner_id and job.state == "running":
        await _hand_back(conn, job, now=now)


async def _hand_back(conn: Conn, job: JobRecord, *, now: datetime) -> None:
    """The work of ``give_back`` on a job this transaction has locked."""
    assert job.miner_id is not None
    if job.booking_id is not None and job.started_at is not None:
        await outages.refund_unserved(
            conn, booking_id=job.booking_id, since=job.started_at, now=now
        )
    job.state, job.started_at, job.claim_expires_at = "assigned", None, None
    await job.save(conn, "state", "started_at", "claim_expires_at")
    await wakeup.job_assigned(conn, job.miner_id)


async def confirm(conn: Conn, *, job_id: str, miner_id: str, now: datetime) -> Job:
    """The miner has the job it claimed: the hand-over holds (confirming twice is fine)."""
    job = await _miners_running_job(conn, job_id, miner_id, now)
    if job.state != "running":  # its claim ran out and it went back: poll for it again
        raise Conflict("This job went back to be polled for again.", code="job_not_running")
    job.claim_expires_at = None
    await job.save(conn, "claim_expires_at")
    return await _with_booking(conn, job)


async def expired_claims(conn: Conn, *, now: datetime, limit: int = 200) -> list[str]:
    """Jobs whose claim ran out unconfirmed."""
    return [row[0] for row in await conn.fetch_values(q.EXPIRED_CLAIMS, now, limit)]


async def release_claim(conn: Conn, *, job_id: str, now: datetime) -> None:
    """The sweeper's part: a claim that ran out unconfirmed gives its job back. Checked under
    the job's lock, so a confirmation that committed first keeps the job with its miner."""
    job = await _locked_job(conn, job_id, skip_locked=True)
    if job is not None and _claim_ran_out(job, now):
        await _hand_back(conn, job, now=now)


def _claim_ran_out(job: JobRecord, now: datetime) -> bool:
    """The job was handed over on a claim its miner did not confirm in time: it never ran."""
    return (
        job.state == "running" and job.claim_expires_at is not None and job.claim_expires_at <= now
    )


async def _miners_running_job(conn: Conn, job_id: str, miner_id: str, now: datetime) -> JobRecord:
    job = await _job_for_change(conn, job_id)
    if job.miner_id != miner_id:
        raise NotFound(f"No job {job_id!r} assigned to you.", code="job_not_found")
    state = effective_state(job, now)
    if state not in ("assigned", "running"):
        raise Conflict(f"This job is {state}.", code="job_not_running")
    return job


async def complete(
    conn: Conn,
    *,
    job_id: str,
    miner_id: str,
    result: Any,
    now: datetime,
    settings: Settings,
    metrics: dict[str, Any] | None = None,
) -> Job:
    job = await _miners_running_job(conn, job_id, miner_id, now)
    await _end_booking(conn, job, now=now, settings=settings)
    job.state, job.result, job.finished_at = "completed", result, now
    job.metrics = metrics
    await job.save(conn, "state", "result", "finished_at", "metrics")
    announce.job(conn, "finished", job, now=now)
    return await _with_booking(conn, job)


async def fail(
    conn: Conn,
    *,
    job_id: str,
    miner_id: str,
    error: str,
    now: datetime,
    settings: Settings,
    metrics: dict[str, Any] | None = None,
) -> Job:
    job = await _miners_running_job(conn, job_id, miner_id, now)
    await _failed(conn, job, error=error, metrics=metrics, now=now, settings=settings)
    return await _with_booking(conn, job)


async def _failed(
    conn: Conn,
    job: JobRecord,
    *,
    error: str,
    metrics: dict[str, Any] | None,
    now: datetime,
    settings: Settings,
) -> None:
    """The job failed by its provider: the rest of its booking refunded (a job that had
    started and outlived its booking was served, and that stays paid)."""
    started = job.state == "running"
    await _end_booking(
        conn, job, now=now, settings=settings, refund=True, refund_after_end=not started
    )
    job.state, job.error, job.finished_at = "failed", error, now
    job.metrics = metrics
    await job.save(conn, "state", "error", "finished_at", "metrics")
    announce.job(conn, "failed", job, now=now)


async def cancel(
    conn: Conn, *, job_id: str, principal: Principal, now: datetime, settings: Settings
) -> Job:
    job = await _job_for_change(conn, job_id)
    if principal.role != "admin" and job.client_id != principal.owner_id:
        raise NotFound(f"No job {job_id!r}.", code="job_not_found")
    state = effective_state(job, now)
    if state not in LIVE:
        raise Conflict(f"This job is {state}.", code="job_finished")
    if _claim_ran_out(job, now):
        await _hand_back(conn, job, now=now)
    # Used time is paid for a job that started; one that never did costs nothing.
    unserved = job.state == "assigned"
    await _end_booking(
        conn, job, now=now, settings=settings, refund=unserved, refund_after_end=unserved
    )
    job.state, job.finished_at = "cancelled", now
    await job.save(conn, "state", "finished_at")
    announce.job(conn, "cancelled", job, now=now)
    return await _with_booking(conn, job)


async def _visible(conn: Conn, job_id: str, principal: Principal) -> JobRecord:
    row = await conn.fetchrow(q.JOB, job_id)
    job = None if row is None else JobRecord.from_row(row)
    visible = job is not None and (
        principal.role == "admin" or principal.owner_id in (job.client_id, job.miner_id)
    )
    if job is None or not visible:
        raise NotFound(f"No job {job_id!r}.", code="job_not_found")
    return job


async def get(conn: Conn, *, job_id: str, principal: Principal) -> Job:
    return await _with_booking(conn, await _visible(conn, job_id, principal))


async def outcome(conn: Conn, *, job_id: str, principal: Principal, now: datetime) -> JobRecord:
    """The job once it has ended; 425 (too early) before."""
    job = await _visible(conn, job_id, principal)
    state = effective_state(job, now)
    if state not in ENDED:
        raise TooEarly(f"The job is {state}; its result comes when it ends.", code="job_not_ended")
    return job


@dataclass(frozen=True, slots=True)
class JobFilters:
    state: str | None = None
    job_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_cost_units: int | None = None


async def list_jobs(
    conn: Conn,
    *,
    principal: Principal,
    now: datetime,
    limit: int,
    offset: int,
    filters: JobFilters = JobFilters(),
) -> list[Job]:
    where: list[str] = []
    args: list[Any] = []

    def condition(template: str, *values: Any) -> None:
        marks = []
        for value in values:
            args.append(value)
            marks.append(f"${len(args)}")
        where.append(template.format(*marks))

    if principal.role in ("client", "miner"):
        condition(f"j.{principal.role}_id = {{}}", principal.owner_id)
    f = filters
    if f.state == "expired":
        condition(
            "(j.state = 'expired' OR (j.state IN ('queued', 'assigned') AND j.expires_at <= {}))",
            now,
        )
    elif f.state in WAITING:
        condition("j.state = {} AND j.expires_at > {}", f.state, now)
    elif f.state is not None:
        condition("j.state = {}", f.state)
    if f.job_type is not None:
        condition("j.job_type = {}", f.job_type)
    if f.since is not None:
        condition("j.created_at >= {}", f.since)
    if f.until is not None:
        condition("j.created_at < {}", f.until)
    if f.min_cost_units is not None:
        condition(
            "j.booking_id IN (SELECT b.id FROM bookings b WHERE b.charged_units >= {})",
            f.min_cost_units,
        )
    args += [limit, offset]
    query = built(
        f"SELECT {', '.join('j.' + name for name in q.JOB_FIELDS)} FROM jobs j "
        f"{'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY j.created_at DESC, j.id DESC LIMIT ${len(args) - 1} OFFSET ${len(args)}"
    )
    jobs = [JobRecord.from_row(row) for row in await conn.fetch(query, *args)]
    found = await q.bookings_by_id(conn, [j.booking_id for j in jobs if j.booking_id])
    return [Job(j, found.get(j.booking_id or "")) for j in jobs]


async def job_receipt(conn: Conn, *, job_id: str, principal: Principal) -> Job:
    found = await _with_booking(conn, await _visible(conn, job_id, principal))
    gpu_id = found.job.gpu_id
    model = None if gpu_id is None else await conn.fetchval(q.GPU_MODEL, gpu_id)
    return replace(found, gpu_model=model)


async def receipts(conn: Conn, *, limit: int, job_id: str | None, state: str | None) -> list[Job]:
    """Receipts of jobs that have ended (the explorer: public, no payloads or results)."""
    args: list[Any] = list(ENDED)
    where = [f"j.state IN ({', '.join(f'${i}' for i in range(1, len(args) + 1))})"]
    for column, value in (("id", job_id), ("state", state)):
        if value is not None:
            args.append(value)
            where.append(f"j.{column} = ${len(args)}")
    args.append(limit)
    query = built(
        f"SELECT {', '.join('j.' + name for name in q.JOB_FIELDS)} FROM jobs j "
        f"WHERE {' AND '.join(where)} ORDER BY j.finished_at DESC, j.id DESC LIMIT ${len(args)}"
    )
    jobs = [JobRecord.from_row(row) for row in await conn.fetch(query, *args)]
    found = await q.bookings_by_id(conn, [j.booking_id for j in jobs if j.booking_id])
    models = await q.gpu_models(conn, [j.gpu_id for j in jobs if j.gpu_id])
    return [Job(j, found.get(j.booking_id or ""), models.get(j.gpu_id or "")) for j in jobs]
