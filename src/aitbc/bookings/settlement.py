"""How bookings end in the database: exactly once, whoever gets there first.

- ``close`` ends one booking now (its release, a job's result or failure): a conditional
  UPDATE moves it out of ``open``, and only the transaction whose update matched posts the
  money.
- ``settle_due`` ends bookings whose time is up, and those whose miner went silent past the
  outage grace (as ``interrupted``, see bookings.outages), many per transaction (the
  sweeper's batches, or one GPU after a request touched it), and records the start of
  reservations that have begun. It takes booking rows with SKIP LOCKED, so it never waits
  for a request (or another process's sweep) holding one, and it locks the accounts of the
  whole batch once, in the same owner-then-kind order as every posting, so it cannot
  deadlock with them.

Every change to a booking's order goes through a booking whose row the transaction holds, so
an order's status read with that row cannot change underneath."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from aitbc.bookings import announce, lifecycle, riders
from aitbc.bookings.lifecycle import Outage, outage
from aitbc.bookings.records import COLUMNS, FROM, BookingRecord
from aitbc.config import Policy
from aitbc.ledger.postings import Leg, Posting, post, post_many
from aitbc.models.account import ESCROW, MAIN, PLATFORM_OWNER
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.signals import JOBS
from aitbc.store.values import as_time

_CLOSE = Query(
    "UPDATE bookings SET status = $2, charged_units = $3, refunded_units = $4, ended_at = $5 "
    "WHERE id = $1 AND status = 'open' AND end_time = $6"
)
_START_ORDER = Query("UPDATE orders SET status = 'active' WHERE id = $1 AND status = 'pending'")
_END_ORDER = Query(
    "UPDATE orders SET status = $2, closed_at = $3 WHERE id = $1",
    arrays="UPDATE orders o SET status = v.status, closed_at = v.at "
    "FROM unnest($1::varchar[], $2::varchar[], $3::timestamp[]) AS v(id, status, at) "
    "WHERE o.id = v.id",
)
_EVENT = Query(
    "INSERT INTO order_events (order_id, status, at) VALUES ($1, $2, $3)",
    arrays="INSERT INTO order_events (order_id, status, at) "
    "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::timestamp[])",
)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    ended: datetime  # where its clock stopped
    money: lifecycle.Split
    # When it became ``interrupted``: the grace ran out (its clock stopped earlier, at the
    # last heartbeat, and the order's history says both).
    noticed: datetime | None = None

    def events(self, order_id: str) -> list[tuple[str, str, datetime]]:
        """The order's history rows for this end."""
        if self.noticed is None:
            return [(order_id, self.status, self.ended)]
        return [(order_id, "offline", self.ended), (order_id, self.status, self.noticed)]


def outcome(
    booking: BookingRecord,
    *,
    at: datetime,
    fee_bps: int,
    full_refund: bool = False,
    unserved: bool = False,
    silence: Outage | None = None,
) -> Outcome:
    """How a booking ends at ``at`` (its end time once the time is up). ``full_refund`` is
    for the provider's failure: nothing is charged, and it ends ``cancelled``; ``unserved``
    for a job's booking whose miner never took the job: nothing is charged, however it
    ends. During its miner's ``silence`` the booking's clock has stopped; once the silence
    outlasted the grace, it ends there as ``interrupted``."""
    if full_refund:
        return Outcome("cancelled", min(at, booking.end_time), lifecycle.nothing_served(booking))
    clocked = at if silence is None else min(at, silence.stop)
    if unserved:
        money = lifecycle.nothing_served(booking)
    else:
        money = lifecycle.split(booking, clocked, fee_bps)
    if silence is not None and silence.interrupted(at):
        return Outcome("interrupted", silence.stop, money, noticed=silence.deadline)
    if at >= booking.end_time:
        return Outcome("completed", booking.end_time, money)
    if at <= booking.start_time:
        return Outcome("cancelled", at, money)
    return Outcome("released", at, money)


def legs(booking: BookingRecord, end: Outcome) -> list[Leg]:
    return [
        Leg(booking.client_id, ESCROW, -(booking.total_units - booking.outage_refund_units)),
        Leg(booking.miner_id, MAIN, end.money.provider),
        Leg(PLATFORM_OWNER, MAIN, end.money.fee),
        Leg(booking.client_id, MAIN, end.money.refunded),
    ]


async def _record_order_end(conn: Conn, booking: BookingRecord, end: Outcome) -> None:
    if end.ended > booking.start_time and await conn.execute(_START_ORDER, booking.order_id):
        await conn.execute(_EVENT, booking.order_id, "active", booking.start_time)
    await conn.executemany(_EVENT, end.events(booking.order_id))
    await conn.execute(_END_ORDER, booking.order_id, end.status, end.ended)


async def close(
    conn: Conn,
    booking: BookingRecord,
    *,
    at: datetime,
    now: datetime,
    fee_bps: int,
    full_refund: bool = False,
    silence: Outage | None = None,
) -> BookingRecord | None:
    """End ``booking`` as of ``at``; the ended record, or None when another transaction
    ended (or extended) it first. Its job, if it has one, is the caller's to see to (a
    release cancels it through bookings.riders; the jobs domain ends its own)."""
    end = outcome(booking, at=at, fee_bps=fee_bps, full_refund=full_refund, silence=silence)
    money = end.money
    matched = await conn.execute(
        _CLOSE,
        booking.id,
        end.status,
        money.charged,
        money.refunded,
        end.ended,
        booking.end_time,
    )
    if matched != 1:
        return None
    await post(
        conn, kind=f"booking_{end.status}", legs=legs(booking, end), now=now, booking_id=booking.id
    )
    await _record_order_end(conn, booking, end)
    record = ended_record(booking, end)
    announce.ended(conn, record, now=now)
    return record


def ended_record(booking: BookingRecord, end: Outcome) -> BookingRecord:
    return replace(
        booking,
        status=end.status,
        charged_units=end.money.charged,
        refunded_units=end.money.refunded,
        ended_at=end.ended,
        order_status=end.status,
    )


# -- many at once --------------------------------------------------------------------------

_DUE = f"""
SELECT {COLUMNS} FROM {FROM}
WHERE b.status = 'open' AND b.end_time <= $1 {{gpu}}
ORDER BY b.end_time, b.id LIMIT $2 FOR UPDATE OF b SKIP LOCKED
"""
# Bookings that have begun on GPUs of miners silent for at least timeout and grace ($3).
_SILENT = f"""
SELECT {COLUMNS} FROM {FROM}
WHERE m.last_heartbeat <= $3 AND b.status = 'open' AND b.start_time <= $1 {{gpu}}
ORDER BY b.id LIMIT $2 FOR UPDATE OF b SKIP LOCKED
"""
_DUE_ANYWHERE = Query(_DUE.format(gpu=""))
_DUE_ON_GPU = Query(_DUE.format(gpu="AND b.gpu_id = $3"))
_SILENT_ANYWHERE = Query(_SILENT.format(gpu=""))
_SILENT_ON_GPU = Query(_SILENT.format(gpu="AND b.gpu_id = $4"))
_SETTLE = Query(
    "UPDATE bookings SET status = $2, charged_units = $3, refunded_units = $4, ended_at = $5 "
    "WHERE id = $1 AND status = 'open'",
    arrays="UPDATE bookings b SET status = v.status, charged_units = v.charged, "
    "refunded_units = v.refunded, ended_at = v.ended FROM unnest($1::varchar[], "
    "$2::varchar[], $3::bigint[], $4::bigint[], $5::timestamp[]) "
    "AS v(id, status, charged, refunded, ended) WHERE b.id = v.id AND b.status = 'open'",
)
_STARTED = f"""
SELECT {COLUMNS} FROM {FROM}
WHERE o.status = 'pending' AND b.status = 'open' AND b.start_time <= $1 AND b.end_time > $1
{{gpu}} LIMIT $2 FOR UPDATE OF b SKIP LOCKED
"""
_STARTED_ANYWHERE = Query(_STARTED.format(gpu=""))
_STARTED_ON_GPU = Query(_STARTED.format(gpu="AND b.gpu_id = $3"))
_ACTIVATE = Query(
    "UPDATE orders SET status = 'active' WHERE id = $1",
    arrays="UPDATE orders SET status = 'active' WHERE id = ANY($1::varchar[])",
)


@dataclass(frozen=True, slots=True)
class Ended:
    booking: BookingRecord
    outcome: Outcome
    job: riders.Held | None = None  # its live job, if this transaction holds it


async def end_many(
    conn: Conn, ended: Sequence[Ended], now: datetime, *, postings: Sequence[Posting] = ()
) -> None:
    """Record the ends of bookings whose rows this transaction holds, with ``postings`` of
    its own, all posted at once: the jobs domain sees to their jobs (bookings.riders), then
    the money moves, then the bookings and their orders change."""
    for item in ended:
        await riders.ended(conn, item.job, item.booking, status=item.outcome.status, now=now)
    closing = [
        Posting(f"booking_{e.outcome.status}", legs(e.booking, e.outcome), e.booking.id)
        for e in ended
    ]
    await post_many(conn, [*postings, *closing], now=now)
    if not ended:
        return
    await conn.executemany(
        _SETTLE,
        [
            (
                e.booking.id,
                e.outcome.status,
                e.outcome.money.charged,
                e.outcome.money.refunded,
                e.outcome.ended,
            )
            for e in ended
        ],
    )
    started, events, closed = [], [], []
    for item in ended:
        booking, end = item.booking, item.outcome
        announce.ended(conn, ended_record(booking, end), now=now)
        if booking.order_status == "pending" and end.ended > booking.start_time:
            started.append((booking.order_id, "active", booking.start_time))
        events += end.events(booking.order_id)
        closed.append((booking.order_id, end.status, end.ended))
    await conn.executemany(_EVENT, started + events)
    await conn.executemany(_END_ORDER, closed)


def ending_now(
    booking: BookingRecord, *, unserved: bool, now: datetime, fee_bps: int, policy: Policy
) -> Outcome | None:
    """How a sweep at ``now`` ends the open booking, or None when it leaves it open: one
    whose time is up ends completed (cancelled, refunded in full, when its job was
    ``unserved``), one whose miner stayed away past the grace ends interrupted (charged
    nothing when ``unserved``), one whose miner may still come back waits."""
    silence = outage(booking, heartbeat=booking.miner_heartbeat, policy=policy)
    if silence is not None:
        if not silence.interrupted(now):
            return None
        return outcome(booking, at=now, fee_bps=fee_bps, unserved=unserved, silence=silence)
    if booking.end_time > now:
        return None
    return outcome(booking, at=booking.end_time, fee_bps=fee_bps, full_refund=unserved)


async def settle_due(
    conn: Conn,
    *,
    now: datetime,
    fee_bps: int,
    policy: Policy,
    gpu_id: str | None = None,
    limit: int = 200,
) -> int:
    """End up to ``limit`` bookings whose time is up or whose miner stayed away past the
    grace (on one GPU, or anywhere), and record the start of reservations that have begun.
    Returns how many bookings it ended."""
    silent_before = now - timedelta(seconds=policy.timeout + policy.grace)
    on_gpu = () if gpu_id is None else (gpu_id,)
    rows = list(
        await conn.fetch(_DUE_ANYWHERE if gpu_id is None else _DUE_ON_GPU, now, limit, *on_gpu)
    )
    seen = {row["id"] for row in rows}
    silent = await conn.fetch(
        _SILENT_ANYWHERE if gpu_id is None else _SILENT_ON_GPU, now, limit, silent_before, *on_gpu
    )
    rows += [row for row in silent if row["id"] not in seen]
    ended: list[Ended] = []
    for row in rows:
        booking = BookingRecord.from_row(row)
        if ending_now(booking, unserved=False, now=now, fee_bps=fee_bps, policy=policy) is None:
            continue  # not over yet, or its miner may still come back
        job = await riders.hold(conn, booking)
        if job is not None and not job.locked:
            continue  # a poll or a result holds the job: the next sweep ends it
        # A job booking that ran out before the miner took the job was not served.
        unserved = job is not None and job.waiting
        end = ending_now(booking, unserved=unserved, now=now, fee_bps=fee_bps, policy=policy)
        assert end is not None
        ended.append(Ended(booking, end, job))
    await end_many(conn, ended, now)
    if gpu_id is None:
        begun = await conn.fetch(_STARTED_ANYWHERE, now, limit)
    else:
        begun = await conn.fetch(_STARTED_ON_GPU, now, limit, gpu_id)
    await conn.executemany(_ACTIVATE, [(row["order_id"],) for row in begun])
    await conn.executemany(
        _EVENT, [(row["order_id"], "active", as_time(row["start_time"])) for row in begun]
    )
    for row in begun:
        started = replace(BookingRecord.from_row(row), order_status="active")
        announce.booking(conn, started, "started", now=now, policy=policy)
    # A job's booking that began (after a preemption's notice): its miner's poll takes it now.
    for miner_id in sorted({row["miner_id"] for row in begun if row["job_id"] is not None}):
        await conn.notify(JOBS, miner_id)
    return len(ended)
