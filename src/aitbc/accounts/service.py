"""Balances as clients and miners see them, and the ledger behind them.

Reads never write: a booking the next sweep would end (its time is up, or its miner stayed
away past the grace) is counted as ended in the figures shown."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from aitbc.accounts.schemas import AccountPublic, LedgerLine
from aitbc.bookings.records import COLUMNS, FROM, BookingRecord
from aitbc.bookings.settlement import ending_now, legs
from aitbc.config import Settings
from aitbc.errors import NotFound
from aitbc.kit.money import from_units
from aitbc.models import Account, ApiKey, LedgerEntry, LedgerTransaction
from aitbc.models.account import ESCROW, MAIN, PLATFORM_OWNER
from aitbc.store.conn import SessionConn, drive
from aitbc.store.query import Query


def _stored(session: Session, owner_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Account.kind, Account.balance_units).where(Account.owner_id == owner_id)
    )
    return {kind: units for kind, units in rows}


_ENDING = Query(
    f"""
    SELECT {COLUMNS}, j.state AS job_state FROM {FROM}
    LEFT JOIN jobs j ON j.booking_id = b.id AND j.state IN ('assigned', 'running')
    WHERE b.status = 'open'
      AND (b.end_time <= $1 OR (m.last_heartbeat <= $2 AND b.start_time <= $1))
      AND (b.client_id = $3 OR b.miner_id = $3 OR $3 = $4)
    """
)


def view(session: Session, *, owner_id: str, now: datetime, settings: Settings) -> AccountPublic:
    """The stored balances, with what the next sweep will post for the owner's bookings
    already counted (the same decision: bookings.settlement.ending_now)."""
    stored = _stored(session, owner_id)
    policy, fee_bps = settings.outage_policy, settings.platform_fee_bps
    silent_before = now - timedelta(seconds=policy.timeout + policy.grace)
    rows = drive(SessionConn(session).fetch(_ENDING, now, silent_before, owner_id, PLATFORM_OWNER))
    main_change = escrow_change = unsettled = 0
    for row in rows:
        booking = BookingRecord.from_row(row)
        unserved = row["job_state"] == "assigned"
        end = ending_now(booking, unserved=unserved, now=now, fee_bps=fee_bps, policy=policy)
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
    return AccountPublic(
        owner_id=owner_id,
        balance=from_units(stored.get(MAIN, 0) + main_change),
        escrow=from_units(stored.get(ESCROW, 0) + escrow_change),
        unsettled=from_units(unsettled),
    )


def ledger(session: Session, *, owner_id: str, limit: int, offset: int) -> list[LedgerLine]:
    rows = session.execute(
        select(LedgerEntry, LedgerTransaction, Account.kind)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(Account, Account.id == LedgerEntry.account_id)
        .where(Account.owner_id == owner_id)
        .order_by(LedgerEntry.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        LedgerLine(
            entry_id=entry.id,
            transaction_id=txn.id,
            kind=txn.kind,
            account=kind,
            amount=from_units(entry.amount_units),
            booking_id=txn.booking_id,
            created_at=txn.created_at,
        )
        for entry, txn, kind in rows
    ]


def require_known_owner(session: Session, owner_id: str) -> None:
    """The owner holds an API key or an account; else 404."""
    for table in (ApiKey, Account):
        if session.scalar(select(table.owner_id).where(table.owner_id == owner_id).limit(1)):
            return
    raise NotFound(
        f"Nobody is known as {owner_id!r}: no API key and no account. Check the name, or pass "
        "create=true to open an account for a new owner.",
        code="owner_not_found",
    )
