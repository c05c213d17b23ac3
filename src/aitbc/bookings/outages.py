"""Fair billing when a GPU drops: a booking's clock stops at its miner's last heartbeat.

A miner is offline once its last heartbeat is older than the heartbeat timeout. For a
booking that its miner went offline during (or before it began), the clock stops at the
last heartbeat (or never starts). If the miner is back within the grace period
(``AITBC_OUTAGE_GRACE_SECONDS``, counted from when it went offline, or from the booking's
start if that is later), the booking goes on and its offline seconds are refunded at once
(``resolve``, from the heartbeat that ends the silence); if not, the booking ends as
``interrupted`` at the last heartbeat (``settlement.settle_due``, or a late return): the
client gets back everything from then on, the miner is paid for the time served."""

from __future__ import annotations

from datetime import datetime

from aitbc.bookings import announce, lifecycle, riders, settlement
from aitbc.bookings.lifecycle import offline_seconds, outage
from aitbc.bookings.records import COLUMNS, FROM, BookingRecord
from aitbc.config import Policy
from aitbc.ledger.postings import Leg, Posting, post_many
from aitbc.models.account import ESCROW, MAIN
from aitbc.store.conn import Conn
from aitbc.store.query import Query

_SILENT_BOOKINGS = Query(
    f"""
    SELECT {COLUMNS} FROM {FROM}
    WHERE b.miner_id = $1 AND b.status = 'open' AND b.start_time < $3 AND b.end_time > $2
    ORDER BY b.id FOR UPDATE OF b
    """
)
_REFUNDED = Query(
    "UPDATE bookings SET outage_seconds = outage_seconds + $2, "
    "outage_refund_units = outage_refund_units + $3 WHERE id = $1"
)
_EVENT = Query("INSERT INTO order_events (order_id, status, at) VALUES ($1, $2, $3)")


async def resolve(
    conn: Conn,
    *,
    miner_id: str,
    silent_from: datetime,
    back: datetime,
    policy: Policy,
    fee_bps: int,
) -> int:
    """The miner is back at ``back`` after a silence since ``silent_from`` longer than the
    timeout. Its bookings still within their grace are refunded their offline seconds (those
    whose time ran out meanwhile end now, completed, charged to the last heartbeat); the
    others end as interrupted (if the sweeper has not ended them yet). Returns how many it
    interrupted. The caller holds the miner's row, and no booking's."""
    rows = await conn.fetch(_SILENT_BOOKINGS, miner_id, silent_from, back)
    refunds: list[Posting] = []
    ended: list[settlement.Ended] = []
    for row in rows:
        booking = BookingRecord.from_row(row)
        silence = outage(booking, heartbeat=silent_from, policy=policy)
        if silence is None:
            continue
        if silence.interrupted(back) or booking.end_time <= back:
            # Interrupted; or its time ran out during the silence: it ends now, charged to
            # the last heartbeat, as it read while the miner was away (lifecycle.standing).
            # Either way a job its miner never took was not served (as in a sweep).
            job = await riders.hold(conn, booking)
            unserved = job is not None and job.locked and job.waiting
            end = settlement.outcome(
                booking,
                at=back,
                fee_bps=fee_bps,
                full_refund=unserved and not silence.interrupted(back),
                unserved=unserved,
                silence=silence,
            )
            ended.append(settlement.Ended(booking, end, job))
            continue
        refund = await _refund(conn, booking, silent_from, back, "booking_outage_refund")
        if refund is None:
            continue
        await conn.execute(
            _EVENT, booking.order_id, "offline", max(silent_from, booking.start_time)
        )
        await conn.execute(_EVENT, booking.order_id, "back", back)
        units = refund.legs[-1].amount_units
        announce.refunded(conn, booking, units=units, reason="offline", now=back)
        refunds.append(refund)
    await settlement.end_many(conn, ended, back, postings=refunds)
    return len(ended)


async def _refund(
    conn: Conn, booking: BookingRecord, since: datetime, until: datetime, kind: str
) -> Posting | None:
    """Stop the booking's clock for its whole seconds in [since, until): recorded on the
    booking, and the posting that gives their share of the escrow back (None: no whole
    second)."""
    seconds = offline_seconds(booking, since, until)
    if seconds == 0:
        return None
    remaining = booking.total_units - booking.outage_refund_units
    units = min(lifecycle.rate_units(booking, seconds), remaining)
    await conn.execute(_REFUNDED, booking.id, seconds, units)
    return Posting(
        kind,
        [Leg(booking.client_id, ESCROW, -units), Leg(booking.client_id, MAIN, units)],
        booking.id,
    )


_BOOKING = Query(f"SELECT {COLUMNS} FROM {FROM} WHERE b.id = $1 AND b.status = 'open'")


async def refund_unserved(conn: Conn, *, booking_id: str, since: datetime, now: datetime) -> None:
    """Refund the whole seconds of the booking's window in [since, now) that nobody was
    served (a job handed to a miner that never got it), as offline seconds are: its clock
    does not run for them. The caller holds the booking's GPU."""
    row = await conn.fetchrow(_BOOKING, booking_id)
    if row is None:
        return
    refund = await _refund(conn, BookingRecord.from_row(row), since, now, "booking_unserved_refund")
    if refund is not None:
        await post_many(conn, [refund], now=now)
