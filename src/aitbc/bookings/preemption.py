"""Interruptible bookings giving way: a booking that pays more (on demand, or a bid at least
one step higher) displaces the interruptible bookings of its GPU that overlap its window.

A displaced booking that is running keeps the GPU for the notice
(``AITBC_PREEMPT_NOTICE_SECONDS``) and ends ``preempted`` then, charged to that second; one
that has not begun ends at once, charged nothing. Either way it is settled in the displacing
booking's transaction: its unused escrow comes back at once, and the displacing booking
begins when the GPU is free (bookings.service shifts its window). The notice reaches the
renter and the provider's agent as a ``booking.preempted`` event, and again in the answer to
each of the miner's heartbeats until the notice ends (``in_notice``); a job on the booking
goes back to the queue.

A gang (bookings.gangs) is preempted as a whole or not at all: displacing one of its
bookings ends every open booking of the gang at the same moment, each given the notice on
its own GPU. The displacing booking holds only its own GPU's lock, so it reads the
bookings it beats without locks, adds their gangs' other bookings, and locks them all in
id order (the order every transaction that locks several bookings takes), then takes only
those still open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aitbc.bookings import announce, lifecycle, riders, settlement
from aitbc.bookings.records import COLUMNS, FROM, BookingRecord
from aitbc.config import Policy
from aitbc.gpus.bids import BID_STEP_UNITS
from aitbc.kit.money import units_text
from aitbc.ledger.postings import Posting
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.values import as_time, iso

ON_DEMAND = "on_demand"
INTERRUPTIBLE = "interruptible"
# What an on-demand booking outbids: every bid.
_ANY_BID = 2**62
# A miner's bookings preempted and still in their notice ($1 the miner, $2 now): by its
# GPUs' booking windows (a preempted booking's end_time is at least its ended_at).
_IN_NOTICE = Query(
    "SELECT b.id, b.gpu_id, b.job_id, b.ended_at FROM bookings b JOIN gpus g ON g.id = b.gpu_id "
    "WHERE g.miner_id = $1 AND b.status = 'preempted' AND b.end_time > $2 AND b.ended_at > $2 "
    "ORDER BY b.ended_at, b.id"
)


@dataclass(frozen=True, slots=True)
class Notice:
    """A booking of the miner's that was preempted and keeps its GPU until ``gpu_taken_at``."""

    booking_id: str
    gpu_id: str
    job_id: str | None
    gpu_taken_at: datetime


async def in_notice(conn: Conn, miner_id: str, now: datetime) -> list[Notice]:
    """The miner's bookings in a preemption notice now, the soonest taken first."""
    return [
        Notice(r["id"], r["gpu_id"], r["job_id"], as_time(r["ended_at"]))
        for r in await conn.fetch(_IN_NOTICE, miner_id, now)
    ]


@dataclass(frozen=True, slots=True)
class Claim:
    """What a booking pays, as it competes for a GPU."""

    rental_type: str
    price_units: int  # per hour: an interruptible booking's bid

    @property
    def outbids(self) -> int:
        """The highest interruptible bid this booking displaces (-1: none)."""
        if self.rental_type == ON_DEMAND:
            return _ANY_BID
        return self.price_units - BID_STEP_UNITS

    def describe(self) -> str:
        if self.rental_type == ON_DEMAND:
            return f"an on-demand booking at {units_text(self.price_units)} per hour"
        return f"a bid of {units_text(self.price_units)} per hour"


_BEATEN_WHERE = (
    "WHERE b.gpu_id = $1 AND b.status = 'open' AND b.start_time < $2 AND b.end_time > $3 "
    "AND b.rental_type = 'interruptible' AND b.price_units <= $4"
)
_BEATEN = Query(
    f"SELECT {COLUMNS} FROM {FROM} {_BEATEN_WHERE} ORDER BY b.start_time FOR UPDATE OF b"
)
# With gangs among them: the beaten bookings unlocked, then each gang's open bookings.
_BEATEN_UNLOCKED = Query(f"SELECT b.id, b.gang_id FROM bookings b {_BEATEN_WHERE}")
_GANG_OPEN = Query("SELECT id FROM bookings WHERE gang_id = $1 AND status = 'open'")
_LOCKED = Query(f"SELECT {COLUMNS} FROM {FROM} WHERE b.id = $1 FOR UPDATE OF b")
_SETTLE = Query(
    "UPDATE bookings SET status = 'preempted', charged_units = $2, refunded_units = $3, "
    "ended_at = $4 WHERE id = $1 AND status = 'open'"
)
_END_ORDER = Query("UPDATE orders SET status = 'preempted', closed_at = $2 WHERE id = $1")
# _SETTLE, _END_ORDER and the history (its start first when $8) as one statement.
_END_AT_ONCE = Query.postgresql_only(
    """
    WITH settled AS (
        UPDATE bookings SET status = 'preempted', charged_units = $2, refunded_units = $3,
            ended_at = $4
        WHERE id = $1 AND status = 'open' RETURNING id),
    ended AS (
        UPDATE orders SET status = 'preempted', closed_at = $4
        WHERE id = $5 AND EXISTS (SELECT 1 FROM settled)),
    noted AS (
        INSERT INTO order_events (order_id, status, at, note)
        SELECT $5, v.status, v.at, v.note FROM settled,
            (VALUES (1, 'active', $6::timestamp, NULL::text),
                    (2, 'preempted', $4::timestamp, $7::text)) AS v(n, status, at, note)
        WHERE v.n = 2 OR $8 ORDER BY v.n)
    SELECT count(*) FROM settled
    """
)
NOTED_EVENT = Query("INSERT INTO order_events (order_id, status, at, note) VALUES ($1, $2, $3, $4)")


@dataclass(frozen=True, slots=True)
class Displaced:
    booking: BookingRecord  # as it ended
    posting: Posting  # its settlement, for the displacing booking to post with its own
    bid_units: int
    gpu_free_at: datetime


async def displace(
    conn: Conn,
    *,
    gpu_id: str,
    start: datetime,
    end: datetime,
    claim: Claim,
    now: datetime,
    notice_seconds: int,
    fee_bps: int,
    policy: Policy,
    gangs: bool = False,
) -> list[Displaced]:
    """End the interruptible bookings that ``claim`` outbids in the window [start, end) of
    the GPU, whose lock the caller holds; ``gangs``: some of them belong to a gang, whose
    other bookings end with them. A booking whose miner is silent is charged up to the
    silence, as a release would be (one of a gang can fall while its own GPU is away)."""
    notice_ends = now + timedelta(seconds=notice_seconds)
    displaced = []
    for booking, with_gang in await _beaten(conn, gpu_id, start, end, claim, gangs):
        # It keeps the GPU for the notice only, as its agent is told (it stops the job within
        # the notice), even when the window that displaces it begins later.
        cut = min(booking.end_time, notice_ends)
        begun = booking.start_time <= now
        ended = cut if begun and cut > booking.start_time else now  # one not begun: at once
        job = await riders.hold(conn, booking)
        # A job its miner had not taken yet never ran on the GPU: nothing is charged.
        if job is not None and job.locked and job.waiting:
            money = lifecycle.nothing_served(booking)
        else:
            silence = lifecycle.current(
                booking, heartbeat=booking.miner_heartbeat, now=now, policy=policy
            )
            clocked = ended if silence is None else min(ended, silence.stop)
            money = lifecycle.split(booking, clocked, fee_bps)
        outbid = f"{claim.describe()} over yours of {units_text(booking.price_units)}"
        if with_gang:  # its gang fell on another of its GPUs
            outbid = f"{outbid} on another GPU of its gang {booking.gang_id}"
        note = f"Outbid by {outbid}: notice given at {iso(now)}, the GPU taken at {iso(ended)}."
        began = ended > booking.start_time and booking.order_status == "pending"
        if not await _end(conn, booking, money, ended, note, began):
            continue
        outcome = settlement.Outcome("preempted", ended, money)
        record = settlement.ended_record(booking, outcome)
        await riders.ended(conn, job, booking, status=outcome.status, now=now)
        announce.preempted(conn, record, by=claim.rental_type, notice_ends=notice_ends, now=now)
        posting = Posting(
            "booking_preempted", settlement.legs(booking, outcome), booking_id=booking.id
        )
        displaced.append(Displaced(record, posting, booking.price_units, ended))
    return displaced


async def _beaten(
    conn: Conn, gpu_id: str, start: datetime, end: datetime, claim: Claim, gangs: bool
) -> list[tuple[BookingRecord, bool]]:
    """The bookings to end, locked, each with whether it ends only with its gang (it is
    not itself beaten here)."""
    args = (gpu_id, end, start, claim.outbids)
    if not gangs:
        return [(BookingRecord.from_row(row), False) for row in await conn.fetch(_BEATEN, *args)]
    here = await conn.fetch(_BEATEN_UNLOCKED, *args)
    beaten_here = {row["id"] for row in here}
    ids = set(beaten_here)
    for gang_id in sorted({row["gang_id"] for row in here if row["gang_id"] is not None}):
        ids |= {row["id"] for row in await conn.fetch(_GANG_OPEN, gang_id)}
    found = []
    for booking_id in sorted(ids):
        row = await conn.fetchrow(_LOCKED, booking_id)
        if row is not None and row["status"] == "open":
            found.append(BookingRecord.from_row(row))
    # A gang one of whose bookings is no longer beaten here (it ended meanwhile) is left
    # whole: it falls only by a booking it still holds the GPU against.
    still = {b.gang_id for b in found if b.id in beaten_here and b.gang_id is not None}
    kept = [b for b in found if b.gang_id is None or b.gang_id in still]
    kept.sort(key=lambda b: (b.gpu_id != gpu_id, b.start_time, b.id))
    return [(b, b.id not in beaten_here) for b in kept]


async def _end(
    conn: Conn,
    booking: BookingRecord,
    money: lifecycle.Split,
    ended: datetime,
    note: str,
    began: bool,
) -> bool:
    """The booking and its order ended ``preempted`` at ``ended``, with the order's history
    (``began``: its start too, not recorded yet); False when it had ended already."""
    settled = (booking.id, money.charged, money.refunded, ended)
    if conn.dialect == "postgresql":  # one statement
        order = (booking.order_id, booking.start_time, note, began)
        return bool(await conn.fetchval(_END_AT_ONCE, *settled, *order))
    if await conn.execute(_SETTLE, *settled) != 1:
        return False
    if began:
        await conn.execute(NOTED_EVENT, booking.order_id, "active", booking.start_time, None)
    await conn.execute(NOTED_EVENT, booking.order_id, "preempted", ended, note)
    await conn.execute(_END_ORDER, booking.order_id, ended)
    return True


def displacing_note(displaced: list[Displaced]) -> str:
    """The displacing booking's order history: what it took, never naming whom from."""
    bids = ", ".join(units_text(d.bid_units) for d in displaced)
    free = max(d.gpu_free_at for d in displaced)
    many = "bookings" if len(displaced) > 1 else "booking"
    return (
        f"Preempted {len(displaced)} interruptible {many} (bid {bids} per hour); "
        f"the GPU is this booking's from {iso(free)}."
    )
