"""Low-balance alerts: an owner names a balance (``balance_alerts``); the sweeper tells them
(``account.low_balance``) once their spendable balance is below it, and again only after it
has been back at or above it."""

from __future__ import annotations

from datetime import datetime

from aitbc.events.log import emit
from aitbc.kit.money import units_text
from aitbc.models.account import MAIN
from aitbc.store.conn import Conn
from aitbc.store.query import Query

_SET = Query(
    "INSERT INTO balance_alerts (owner_id, below_units) VALUES ($1, $2) "
    "ON CONFLICT (owner_id) DO UPDATE SET below_units = excluded.below_units, noticed_at = NULL"
)
_GET = Query("SELECT below_units FROM balance_alerts WHERE owner_id = $1")
_DROP = Query("DELETE FROM balance_alerts WHERE owner_id = $1")
_LOW = Query(
    "SELECT a.owner_id, a.below_units, coalesce(m.balance_units, 0) AS balance "
    "FROM balance_alerts a LEFT JOIN accounts m ON m.owner_id = a.owner_id AND m.kind = $1 "
    "WHERE a.noticed_at IS NULL AND coalesce(m.balance_units, 0) < a.below_units "
    "ORDER BY a.owner_id LIMIT 500 FOR UPDATE OF a SKIP LOCKED"
)
_NOTICED = Query(
    "UPDATE balance_alerts SET noticed_at = $2 WHERE owner_id = $1 AND noticed_at IS NULL"
)
_RECOVERED = Query(
    "UPDATE balance_alerts SET noticed_at = NULL WHERE noticed_at IS NOT NULL AND below_units "
    "<= (SELECT coalesce(max(balance_units), 0) FROM accounts m "
    "WHERE m.owner_id = balance_alerts.owner_id AND m.kind = $1)"
)


async def set_alert(conn: Conn, *, owner_id: str, below_units: int | None) -> int | None:
    """Alert below ``below_units`` (None: no alert); the alert now."""
    if below_units is None:
        await conn.execute(_DROP, owner_id)
    else:
        await conn.execute(_SET, owner_id, below_units)
    return below_units


async def alert_of(conn: Conn, *, owner_id: str) -> int | None:
    found: int | None = await conn.fetchval(_GET, owner_id)
    return found


async def announce_low(conn: Conn, *, now: datetime) -> int:
    """Tell each owner whose balance fell below their alert, once (the sweeper)."""
    await conn.execute(_RECOVERED, MAIN)
    told = 0
    for row in await conn.fetch(_LOW, MAIN):
        if await conn.execute(_NOTICED, row["owner_id"], now):
            emit(
                conn,
                "account.low_balance",
                subject_id=row["owner_id"],
                data={
                    "balance": units_text(row["balance"]),
                    "below": units_text(row["below_units"]),
                },
                owners=(row["owner_id"],),
                at=now,
            )
            told += 1
    return told
