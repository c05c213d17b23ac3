"""Double-entry postings. Every transaction's legs sum to zero; a debit that would take a
balance below zero is refused by a conditional update (and by a CHECK constraint behind it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
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


def ensure_account(session: Session, owner_id: str, kind: str) -> int:
    query = select(Account.id).where(Account.owner_id == owner_id, Account.kind == kind)
    account_id = session.scalar(query)
    if account_id is not None:
        return account_id
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(Account)
        .values(owner_id=owner_id, kind=kind, balance_units=0)
        .on_conflict_do_nothing(index_elements=["owner_id", "kind"])
    )
    created = session.scalar(query)
    assert created is not None
    return created


def post(
    session: Session,
    *,
    kind: str,
    legs: list[Leg],
    now: datetime,
    booking_id: str | None = None,
    memo: str | None = None,
) -> LedgerTransaction | None:
    legs = [leg for leg in legs if leg.amount_units != 0]
    if sum(leg.amount_units for leg in legs) != 0:
        raise ValueError(f"unbalanced {kind} transaction: {legs}")
    if not legs:
        return None
    resolved = sorted(
        ((ensure_account(session, leg.owner_id, leg.kind), leg) for leg in legs),
        key=lambda pair: pair[0],  # a fixed lock order keeps concurrent postings deadlock-free
    )
    for account_id, leg in resolved:
        statement = (
            update(Account)
            .where(Account.id == account_id)
            .values(balance_units=Account.balance_units + leg.amount_units)
        )
        if leg.amount_units < 0 and leg.kind != EXTERNAL:
            statement = statement.where(Account.balance_units >= -leg.amount_units)
        if session.execute(statement).rowcount != 1:  # type: ignore[attr-defined]
            raise PaymentRequired(
                f"The {leg.kind} balance of {leg.owner_id!r} is too low for this payment.",
                code="insufficient_funds",
            )
    transaction = LedgerTransaction(
        id=new_id("txn"), kind=kind, booking_id=booking_id, memo=memo, created_at=now
    )
    session.add(transaction)
    session.flush()
    session.add_all(
        LedgerEntry(
            transaction_id=transaction.id, account_id=account_id, amount_units=leg.amount_units
        )
        for account_id, leg in resolved
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
