"""A GPU's status, the one rule every reader uses: ``delisted``; else ``offline`` (its miner's
last heartbeat is older than the heartbeat timeout, or the miner said it is offline); else
``booked`` (an open booking covers now); else ``available``.

In SQL over ``gpus g JOIN miners m ON m.id = g.miner_id``; each caller names the parameters
that hold now and the heartbeat cutoff (now minus the timeout)."""

from __future__ import annotations

from datetime import datetime, timedelta

OPEN = "open"
# 'open', for a look-up of one GPU's open bookings: a sub-select, so that the planner cannot
# prove from it that the exclusion constraint's partial GiST index covers the look-up. At
# an estimate equal to a btree's it takes that index otherwise, at five to ten times the
# btree's cost a look-up (0.044 ms against 0.004 in stop 26; 0.020 against 0.003 for a
# list's status in stop 28), paid once for every GPU a list, a GPU's details or a booking
# by criteria looks at.
OPEN_STATUS = "(SELECT 'open')"


def cutoff(now: datetime, heartbeat_timeout: int) -> datetime:
    """Heartbeats before this are too old: their miner is offline."""
    return now - timedelta(seconds=heartbeat_timeout)


def is_offline(last_heartbeat: datetime, reported_status: str | None, cutoff: datetime) -> bool:
    return reported_status == "offline" or last_heartbeat < cutoff


def offline_sql(cutoff: str) -> str:
    return f"(m.last_heartbeat < {cutoff} OR m.reported_status = 'offline')"


def current_booking_sql(now: str) -> str:
    """The end of the open booking of ``g`` that covers now (a subquery)."""
    return (
        f"SELECT b.end_time FROM bookings b WHERE b.gpu_id = g.id AND b.status = {OPEN_STATUS} "
        f"AND b.start_time <= {now} AND b.end_time > {now}"
    )


def status_sql(now: str, cutoff: str) -> str:
    return (
        f"CASE WHEN g.delisted_at IS NOT NULL THEN 'delisted' "
        f"WHEN {offline_sql(cutoff)} THEN 'offline' "
        f"WHEN EXISTS ({current_booking_sql(now)}) THEN 'booked' ELSE 'available' END"
    )


def available_sql(now: str, cutoff: str) -> str:
    """``g`` can be booked now: listed, its miner online, no booking covering now."""
    return (
        f"g.delisted_at IS NULL AND NOT {offline_sql(cutoff)} "
        f"AND NOT EXISTS ({current_booking_sql(now)})"
    )
