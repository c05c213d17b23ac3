"""Balances as clients and miners see them, and the ledger behind them.

Reads never write: a booking the next sweep would end (its time is up, or its miner stayed
away past the grace) is counted as ended in the figures shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aitbc.bookings.records import COLUMNS, FROM, BookingRecord
from aitbc.bookings.settlement import ending_now, legs
from aitbc.config import Settings
from aitbc.errors import NotFound
from aitbc.events.log import emit
from aitbc.jobs.riders import WAITING
from aitbc.kit.money import units_text
from aitbc.ledger import postings
from aitbc.models.account import ESCROW, MAIN, PLATFORM_OWNER
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.records import record

_BALANCES = Query("SELECT kind, balance_units FROM accounts WHERE owner_id = $1")
_LEDGER = Query(
    """
    SELECT e.id AS entry_id, t.id AS transaction_id, t.kind, a.kind AS account, e.amount_units,
           t.booking_id, t.created_at
    FROM ledger_entries e
    JOIN ledger_transactions t ON t.id = e.transaction_id
    JOIN accounts a ON a.id = e.account_id
    WHERE a.owner_id = $1 ORDER BY e.id DESC LIMIT $2 OFFSET $3
    """
)
_HAS_KEY = Query("SELECT 1 FROM api_keys WHERE owner_id = $1 LIMIT 1")
_HAS_ACCOUNT = Query("SELECT 1 FROM accounts WHERE owner_id = $1 LIMIT 1")


@dataclass(frozen=True, slots=True)
class Balances:
    """An owner's money in integer units: spendable, held in escrow, and the part of both
    from bookings that ended but are not yet in the ledger."""

    owner_id: str
    balance_units: int
    escrow_units: int
    unsettled_units: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: int
    transaction_id: str
    kind: str
    account: str
    amount_units: int
    booking_id: str | None
    created_at: datetime


async def _stored(conn: Conn, owner_id: str) -> dict[str, int]:
    return {kind: units for kind, units in await conn.fetch_values(_BALANCES, owner_id)}


_ENDING = Query(
    f"""
    SELECT {COLUMNS}, {WAITING} AS job_waiting FROM {FROM}
    WHERE b.status = 'open'
      AND (b.end_time <= $1 OR (m.last_heartbeat <= $2 AND b.start_time <= $1))
      AND (b.client_id = $3 OR b.miner_id = $3 OR $3 = $4)
    """
)


async def view(conn: Conn, *, owner_id: str, now: datetime, settings: Settings) -> Balances:
    """The stored balances, with what the next sweep will post for the owner's bookings
    already counted (the same decision: bookings.settlement.ending_now)."""
    stored = await _stored(conn, owner_id)
    policy, fee_bps = settings.outage_policy, settings.platform_fee_bps
    silent_before = now - timedelta(seconds=policy.timeout + policy.grace)
    rows = await conn.fetch(_ENDING, now, silent_before, owner_id, PLATFORM_OWNER)
    main_change = escrow_change = unsettled = 0
    for row in rows:
        booking = BookingRecord.from_row(row)
        end = ending_now(
            booking, unserved=bool(row["job_waiting"]), now=now, fee_bps=fee_bps, policy=policy
        )
        if end is None:
            continue
        for leg in legs(booking, end):
            if leg.owner_id != owner_id:
                continue
            if leg.kind == ESCROW:
                escrow_change += leg.amount_units
                unsettled -= leg.amount_units
            elif leg.kind == MAIN:
                main_change += leg.amount_units
                if leg.owner_id != booking.client_id:
                    unsettled += leg.amount_units
    return Balances(
        owner_id=owner_id,
        balance_units=stored.get(MAIN, 0) + main_change,
        escrow_units=stored.get(ESCROW, 0) + escrow_change,
        unsettled_units=unsettled,
    )


async def ledger(conn: Conn, *, owner_id: str, limit: int, offset: int) -> list[LedgerEntry]:
    return [record(LedgerEntry, row) for row in await conn.fetch(_LEDGER, owner_id, limit, offset)]


async def require_known_owner(conn: Conn, owner_id: str) -> None:
    """The owner holds an API key or an account; else 404."""
    for query in (_HAS_KEY, _HAS_ACCOUNT):
        if await conn.fetchval(query, owner_id) is not None:
            return
    raise NotFound(
        f"Nobody is known as {owner_id!r}: no API key and no account. Check the name, or pass "
        "create=true to open an account for a new owner.",
        code="owner_not_found",
    )


async def deposit(
    conn: Conn,
    *,
    owner_id: str,
    amount_units: int,
    open_account: bool,
    now: datetime,
    settings: Settings,
) -> tuple[str, Balances]:
    """Credit the owner (known already, unless ``open_account``): the ledger transaction's id
    and the balances after it."""
    if not open_account:
        await require_known_owner(conn, owner_id)
    transaction_id = await postings.deposit(
        conn, owner_id=owner_id, amount_units=amount_units, now=now
    )
    balances = await view(conn, owner_id=owner_id, now=now, settings=settings)
    emit(
        conn,
        "account.deposit",
        subject_id=owner_id,
        data={
            "transaction_id": transaction_id,
            "amount": units_text(amount_units),
            "balance": units_text(balances.balance_units),
        },
        owners=(owner_id,),
        at=now,
    )
    return transaction_id, balances
