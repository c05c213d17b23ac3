"""How bookings end in the database: exactly once, whoever gets there first.

- ``close`` ends one booking now (its release, a job's result or failure): a conditional
  UPDATE moves it out of ``open``, and only the transaction whose update matched posts the
  money.
- ``settle_due`` settles bookings whose time is up, many per transaction (the sweeper's
  batches, or one GPU after a request touched it), and records the start of reservations
  that have begun. It takes booking rows with SKIP LOCKED, so it never waits for a request
  (or another process's sweep) holding one, and it locks the accounts of the whole batch
  once, in the same owner-then-kind order as every posting, so it cannot deadlock with them.

Every change to a booking's order goes through a booking whose row the transaction holds, so
an order's status read with that row cannot change underneath."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime

from aitbc.accounts.ledger import Leg, post
from aitbc.bookings import lifecycle
from aitbc.bookings.records import COLUMNS, BookingRecord
from aitbc.kit.ids import new_id
from aitbc.models.account import ESCROW, MAIN, PLATFORM_OWNER
from aitbc.store.conn import Conn
from aitbc.store.query import Query, built
from aitbc.store.values import as_time

_CLOSE = Query(
    "UPDATE bookings SET status = $2, charged_units = $3, refunded_units = $4, ended_at = $5 "
    "WHERE id = $1 AND status = 'open' AND end_time = $6"
)
_START_ORDER = Query("UPDATE orders SET status = 'active' WHERE id = $1 AND status = 'pending'")
_END_ORDER = Query("UPDATE orders SET status = $2, closed_at = $3 WHERE id = $1")
_EVENT = Query("INSERT INTO order_events (order_id, status, at) VALUES ($1, $2, $3)")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    ended: datetime
    money: lifecycle.Split


def outcome(
    booking: BookingRecord, *, at: datetime, fee_bps: int, full_refund: bool = False
) -> Outcome:
    """How a booking ends at ``at`` (its end time once the time is up). ``full_refund`` is
    for the provider's failure: nothing is charged."""
    if full_refund:
        money = lifecycle.Split(charged=0, refunded=booking.total_units, fee=0)
        return Outcome("cancelled", min(at, booking.end_time), money)
    money = lifecycle.split(booking, at, fee_bps)
    if at >= booking.end_time:
        return Outcome("completed", booking.end_time, money)
    if at <= booking.start_time:
        return Outcome("cancelled", at, money)
    return Outcome("released", at, money)


def legs(booking: BookingRecord, end: Outcome) -> list[Leg]:
    return [
        Leg(booking.client_id, ESCROW, -booking.total_units),
        Leg(booking.miner_id, MAIN, end.money.provider),
        Leg(PLATFORM_OWNER, MAIN, end.money.fee),
        Leg(booking.client_id, MAIN, end.money.refunded),
    ]


async def _record_order_end(conn: Conn, booking: BookingRecord, end: Outcome) -> None:
    if end.ended > booking.start_time and await conn.execute(_START_ORDER, booking.order_id):
        await conn.execute(_EVENT, booking.order_id, "active", booking.start_time)
    await conn.execute(_EVENT, booking.order_id, end.status, end.ended)
    await conn.execute(_END_ORDER, booking.order_id, end.status, end.ended)


async def close(
    conn: Conn,
    booking: BookingRecord,
    *,
    at: datetime,
    now: datetime,
    fee_bps: int,
    full_refund: bool = False,
) -> BookingRecord | None:
    """End ``booking`` as of ``at``; the ended record, or None when another transaction
    ended (or extended) it first."""
    end = outcome(booking, at=at, fee_bps=fee_bps, full_refund=full_refund)
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
    return replace(
        booking,
        status=end.status,
        charged_units=money.charged,
        refunded_units=money.refunded,
        ended_at=end.ended,
        order_status=end.status,
    )


# -- many at once --------------------------------------------------------------------------

_DUE = """
SELECT {columns}, j.id AS unserved_job FROM bookings b
JOIN orders o ON o.booking_id = b.id
LEFT JOIN jobs j ON j.booking_id = b.id AND j.state = 'assigned'
WHERE b.status = 'open' AND b.end_time <= $1 {gpu}
ORDER BY b.end_time, b.id LIMIT $2 FOR UPDATE OF b SKIP LOCKED
"""
_DUE_ANYWHERE = Query(_DUE.format(columns=COLUMNS, gpu=""))
_DUE_ON_GPU = Query(_DUE.format(columns=COLUMNS, gpu="AND b.gpu_id = $3"))
_TAKE_JOB = Query("SELECT id FROM jobs WHERE id = $1 AND state = 'assigned' FOR UPDATE SKIP LOCKED")
# A job whose booking ran out before its miner took it was not served: back to the queue.
_REQUEUE_JOB = Query(
    "UPDATE jobs SET state = 'queued', gpu_id = NULL, miner_id = NULL, booking_id = NULL, "
    "assigned_at = NULL WHERE id = $1"
)
_ENSURE_ACCOUNT = Query(
    "INSERT INTO accounts (owner_id, kind, balance_units) VALUES ($1, $2, 0) "
    "ON CONFLICT (owner_id, kind) DO NOTHING"
)
_MOVE = Query("UPDATE accounts SET balance_units = balance_units + $2 WHERE id = $1")
_TRANSACTION = Query(
    "INSERT INTO ledger_transactions (id, kind, booking_id, created_at) VALUES ($1, $2, $3, $4)"
)
_ENTRY = Query(
    "INSERT INTO ledger_entries (transaction_id, account_id, amount_units) VALUES ($1, $2, $3)"
)
_SETTLE = Query(
    "UPDATE bookings SET status = $2, charged_units = $3, refunded_units = $4, ended_at = $5 "
    "WHERE id = $1 AND status = 'open'"
)
_STARTED = """
SELECT b.start_time, o.id AS order_id FROM orders o JOIN bookings b ON b.id = o.booking_id
WHERE o.status = 'pending' AND b.status = 'open' AND b.start_time <= $1 AND b.end_time > $1
{gpu} LIMIT $2 FOR UPDATE OF b SKIP LOCKED
"""
_STARTED_ANYWHERE = Query(_STARTED.format(gpu=""))
_STARTED_ON_GPU = Query(_STARTED.format(gpu="AND b.gpu_id = $3"))
_ACTIVATE = Query("UPDATE orders SET status = 'active' WHERE id = $1")


async def _post_batch(
    conn: Conn, ended: list[tuple[BookingRecord, Outcome]], now: datetime
) -> None:
    """Post every booking's closing transaction, touching each account once, in order."""
    deltas: dict[tuple[str, str], int] = defaultdict(int)
    postings = []
    for booking, end in ended:
        booking_legs = [leg for leg in legs(booking, end) if leg.amount_units]
        for leg in booking_legs:
            deltas[(leg.owner_id, leg.kind)] += leg.amount_units
        postings.append((booking, end, booking_legs))
    touched = sorted(deltas)
    await conn.executemany(_ENSURE_ACCOUNT, touched)
    pairs = ", ".join(f"(${2 * i + 1}, ${2 * i + 2})" for i in range(len(touched)))
    locked = await conn.fetch(
        built(
            "SELECT id, owner_id, kind FROM accounts "
            f"WHERE (owner_id, kind) IN (VALUES {pairs}) ORDER BY owner_id, kind FOR UPDATE"
        ),
        *(part for pair in touched for part in pair),
    )
    account_ids = {(row["owner_id"], row["kind"]): row["id"] for row in locked}
    # Escrow always covers its own bookings; the balance CHECK constraints stand behind it.
    await conn.executemany(_MOVE, [(account_ids[pair], deltas[pair]) for pair in touched])
    transactions, entries = [], []
    for booking, end, booking_legs in postings:
        transaction_id = new_id("txn")
        transactions.append((transaction_id, f"booking_{end.status}", booking.id, now))
        entries += [
            (transaction_id, account_ids[(leg.owner_id, leg.kind)], leg.amount_units)
            for leg in booking_legs
        ]
    await conn.executemany(_TRANSACTION, transactions)
    await conn.executemany(_ENTRY, entries)


async def settle_due(
    conn: Conn, *, now: datetime, fee_bps: int, gpu_id: str | None = None, limit: int = 200
) -> int:
    """Settle up to ``limit`` bookings whose time is up (on one GPU, or anywhere), and record
    the start of reservations that have begun. Returns how many bookings it settled."""
    if gpu_id is None:
        rows = await conn.fetch(_DUE_ANYWHERE, now, limit)
    else:
        rows = await conn.fetch(_DUE_ON_GPU, now, limit, gpu_id)
    ended: list[tuple[BookingRecord, Outcome]] = []
    for row in rows:
        booking = BookingRecord.from_row(row)
        job_id = row["unserved_job"]
        if job_id is not None:
            if await conn.fetchval(_TAKE_JOB, job_id) is None:
                continue  # a poll or a result holds the job: the next sweep settles it
            await conn.execute(_REQUEUE_JOB, job_id)
        end = outcome(booking, at=booking.end_time, fee_bps=fee_bps, full_refund=bool(job_id))
        ended.append((booking, end))
    if ended:
        await _post_batch(conn, ended, now)
        await conn.executemany(
            _SETTLE,
            [(b.id, e.status, e.money.charged, e.money.refunded, e.ended) for b, e in ended],
        )
        started, events, closed = [], [], []
        for booking, end in ended:
            if booking.order_status == "pending" and end.ended > booking.start_time:
                started.append((booking.order_id, "active", booking.start_time))
            events.append((booking.order_id, end.status, end.ended))
            closed.append((booking.order_id, end.status, end.ended))
        await conn.executemany(_EVENT, started + events)
        await conn.executemany(_END_ORDER, closed)
    if gpu_id is None:
        begun = await conn.fetch(_STARTED_ANYWHERE, now, limit)
    else:
        begun = await conn.fetch(_STARTED_ON_GPU, now, limit, gpu_id)
    await conn.executemany(_ACTIVATE, [(row["order_id"],) for row in begun])
    await conn.executemany(
        _EVENT, [(row["order_id"], "active", as_time(row["start_time"])) for row in begun]
    )
    return len(ended)
