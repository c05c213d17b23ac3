"""What it takes to win a GPU with an interruptible bid, the one rule every reader uses (a
GPU's details, a model's prices, the list's filter and sort, booking by criteria).

A GPU that takes bids takes at least its least bid: its provider's minimum, or
``AITBC_MIN_BID_SHARE`` of its price. A booking over a window wins it with its least bid
when nothing holds it then, or with a bid one step (``BID_STEP_UNITS``) above the highest
interruptible bid holding it in the window; no bid wins it while it is held on demand in the
window, nor when winning would take its on-demand price (book it on demand then).

In SQL over ``gpus g``; the caller names the parameters that hold the window's ends."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from aitbc.gpus.status import OPEN_STATUS

BID_STEP_UNITS = 10_000  # 0.01 AITBC: how much more it takes to outbid a bid


def share_points(share: Decimal) -> int:
    """AITBC_MIN_BID_SHARE in basis points (it has at most four decimals)."""
    return int(share * 10_000)


def least_bid(price_units: int, min_bid_units: int | None, share: Decimal) -> int:
    """The least bid a GPU takes: its provider's, or ``share`` of its price rounded down to
    the micro-unit (as ``least_sql``)."""
    if min_bid_units is not None:
        return min_bid_units
    return price_units * share_points(share) // 10_000


def winning_bid(held_bid_units: int) -> int:
    """The least bid that displaces an interruptible booking paying ``held_bid_units``."""
    return held_bid_units + BID_STEP_UNITS


def least_sql(share: Decimal) -> str:
    """``least_bid`` of ``g``."""
    return f"coalesce(g.min_bid_units, g.effective_price_units * {share_points(share)} / 10000)"


def notice_end(now: datetime, notice_seconds: int) -> datetime:
    """Where "now" ends for a bid made now (just after the end of a notice given now): a
    booking made now displaces what holds the GPU until then, the booking that preempted
    its holder (which keeps it for the notice) included."""
    return now + timedelta(seconds=notice_seconds, microseconds=1)


def winning_sql(start: str, end: str, share: Decimal) -> str:
    """The lowest bid that wins ``g`` for a booking from ``start`` to ``end``, or NULL when
    no bid does (a scalar subquery: one look-up of the GPU's open bookings)."""
    least = least_sql(share)
    above = f"max(b.price_units) + {BID_STEP_UNITS}"
    return (
        "CASE WHEN g.interruptible THEN (SELECT CASE "
        "WHEN sum(CASE WHEN b.rental_type = 'interruptible' THEN 0 ELSE 1 END) > 0 THEN NULL "
        f"WHEN {above} > {least} THEN CASE WHEN {above} < g.effective_price_units "
        f"THEN {above} END "
        f"WHEN {least} < g.effective_price_units THEN {least} END "
        f"FROM bookings b WHERE b.gpu_id = g.id AND b.status = {OPEN_STATUS} "
        f"AND b.start_time < {end} AND b.end_time > {start}) END"
    )
