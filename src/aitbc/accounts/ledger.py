"""Double-entry postings. Every transaction's legs sum to zero; a debit that would take a
balance below zero is refused by a conditional update (and by a CHECK constraint behind it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from aitbc.errors import PaymentRequired
from aitbc.kit.ids import new_id
from aitbc.models import Account, LedgerEntry, LedgerTransaction
from aitbc.models.account import EXTERNAL, WORLD_OWNER


@dataclass(frozen=True, slots=True)
class Leg:
    owner_id: str
    kind: str
    amount_units: int


def ensure_account(session: Session, owner_id: str, kind: str) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(Account)
        .values(owner_id=owner_id, kind=kind, balance_units=0)
        .on_conflict_do_nothing(index_elements=["owner_id", "kind"])
    )


def _apply(session: Session, leg: Leg) -> int | None:
    """Move one leg's amount in a single conditional UPDATE; None when no row matched."""
    statement = (
        update(Account)
        .where(Account.owner_id == leg.owner_id, Account.kind == leg.kind)
        .values(balance_units=Account.balance_units + leg.amount_units)
        .returning(Account.id)
    )
    if leg.amount_units < 0 and leg.kind != EXTERNAL:
        statement = statement.where(Account.balance_units >= -leg.amount_units)
    account_id: int | None = session.execute(statement).scalar()
    return account_id


def post(
    session: Session,
    *,
    kind: str,
    legs: list[Leg],
    now: datetime,
    booking_id: str | None = None,
) -> LedgerTransaction | None:
    legs = [leg for leg in legs if leg.amount_units != 0]
    if sum(leg.amount_units for leg in legs) != 0:
        raise ValueError(f"unbalanced {kind} transaction: {legs}")
    if not legs:
        return None
    applied = []
    # One fixed order of row locks keeps concurrent postings free of deadlocks.
    for leg in sorted(legs, key=lambda leg: (leg.owner_id, leg.kind)):
        account_id = _apply(session, leg)
        if account_id is None and (leg.amount_units > 0 or leg.kind == EXTERNAL):
            ensure_account(session, leg.owner_id, leg.kind)
            account_id = _apply(session, leg)
        if account_id is None:
            raise PaymentRequired(
                f"The {leg.kind} balance of {leg.owner_id!r} is too low for this payment.",
                code="insufficient_funds",
            )
        applied.append((account_id, leg.amount_units))
    transaction = LedgerTransaction(
        id=new_id("txn"), kind=kind, booking_id=booking_id, created_at=now
    )
    session.add(transaction)
    session.flush()
    session.add_all(
        LedgerEntry(transaction_id=transaction.id, account_id=account_id, amount_units=amount)
        for account_id, amount in applied
    )
    session.flush()
    return transaction


def deposit(
    session: Session, *, owner_id: str, amount_units: int, now: datetime
) -> LedgerTransaction:
    transaction = post(
        session,
        kind="deposit",
        legs=[Leg(WORLD_OWNER, EXTERNAL, -amount_units), Leg(owner_id, "main", amount_units)],
        now=now,
    )
    assert transaction is not None
    return transaction
