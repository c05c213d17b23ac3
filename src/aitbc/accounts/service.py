"""Balances as clients and miners see them, and the ledger behind them.

Reads never write: a booking whose time is up but which no request or sweeper has settled
yet is counted as settled (escrow paid out to the provider) in the figures shown."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aitbc.accounts.schemas import AccountPublic, LedgerLine
from aitbc.kit.money import from_units
from aitbc.models import Account, Booking, LedgerEntry, LedgerTransaction
from aitbc.models.account import ESCROW, MAIN
from aitbc.models.booking import OPEN


def _stored(session: Session, owner_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Account.kind, Account.balance_units).where(Account.owner_id == owner_id)
    )
    return {kind: units for kind, units in rows}


def view(session: Session, *, owner_id: str, now: datetime, fee_bps: int) -> AccountPublic:
    stored = _stored(session, owner_id)
    due = select(Booking.total_units).where(Booking.status == OPEN, Booking.end_time <= now)
    paid_out = sum(session.scalars(due.where(Booking.client_id == owner_id)))
    earned = sum(
        t - t * fee_bps // 10_000 for t in session.scalars(due.where(Booking.miner_id == owner_id))
    )
    return AccountPublic(
        owner_id=owner_id,
        balance=from_units(stored.get(MAIN, 0) + earned),
        escrow=from_units(stored.get(ESCROW, 0) - paid_out),
        unsettled=from_units(paid_out + earned),
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
