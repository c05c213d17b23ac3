"""Balances as clients and miners see them, and the ledger behind them.

Reads never write: a booking whose time is up but which no request or sweeper has settled
yet is counted as settled (escrow paid out to the provider) in the figures shown."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from aitbc.accounts.schemas import AccountPublic, LedgerLine
from aitbc.kit.money import fee_units, from_units
from aitbc.models import Account, Booking, Job, LedgerEntry, LedgerTransaction
from aitbc.models.account import ESCROW, MAIN, PLATFORM_OWNER
from aitbc.models.booking import OPEN


def _stored(session: Session, owner_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Account.kind, Account.balance_units).where(Account.owner_id == owner_id)
    )
    return {kind: units for kind, units in rows}


def view(session: Session, *, owner_id: str, now: datetime, fee_bps: int) -> AccountPublic:
    stored = _stored(session, owner_id)
    unserved = Job.id.is_not(None)
    due = (
        select(Booking.total_units, Booking.client_id, Booking.miner_id, unserved)
        .outerjoin(Job, and_(Job.booking_id == Booking.id, Job.state == "assigned"))
        .where(Booking.status == OPEN, Booking.end_time <= now)
    )
    if owner_id != PLATFORM_OWNER:
        due = due.where(or_(Booking.client_id == owner_id, Booking.miner_id == owner_id))
    main_change = escrow_change = unsettled = 0
    # The same outcomes settlement will post (bookings.lifecycle.settle_gpu): a job booking
    # the miner never took is refunded in full, any other is paid out less the fee.
    for total, client_id, miner_id, refund_all in session.execute(due):
        fee = 0 if refund_all else fee_units(total, fee_bps)
        if client_id == owner_id:
            escrow_change -= total
            main_change += total if refund_all else 0
            unsettled += total
        if miner_id == owner_id and not refund_all:
            main_change += total - fee
            unsettled += total - fee
        if owner_id == PLATFORM_OWNER:
            main_change += fee
            unsettled += fee
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
