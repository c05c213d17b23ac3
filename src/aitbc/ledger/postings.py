"""Double-entry postings. Every transaction's legs sum to zero; a debit that would take a
balance below zero is refused by a conditional update (and by a CHECK constraint behind it).

Accounts are locked in one fixed order (owner, then kind) by every posting, so concurrent
postings cannot deadlock on each other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aitbc.errors import PaymentRequired
from aitbc.kit.ids import new_id
from aitbc.kit.money import units_text
from aitbc.models.account import EXTERNAL, WORLD_OWNER
from aitbc.store.conn import Conn
from aitbc.store.query import Query


@dataclass(frozen=True, slots=True)
class Leg:
    owner_id: str
    kind: str
    amount_units: int


_DEBIT = Query(
    "UPDATE accounts SET balance_units = balance_units + $3 "
    "WHERE owner_id = $1 AND kind = $2 AND balance_units + $3 >= 0 RETURNING id"
)
# Credits, and the outside world's debits (the one account that may go negative), create
# the account on first use.
_CREDIT = Query(
    "INSERT INTO accounts (owner_id, kind, balance_units) VALUES ($1, $2, $3) "
    "ON CONFLICT (owner_id, kind) DO UPDATE "
    "SET balance_units = accounts.balance_units + excluded.balance_units RETURNING id"
)
_BALANCE = Query("SELECT balance_units FROM accounts WHERE owner_id = $1 AND kind = $2")
_TRANSACTION = Query(
    "INSERT INTO ledger_transactions (id, kind, booking_id, created_at) VALUES ($1, $2, $3, $4)"
)
_ENTRIES = {
    count: Query(
        "INSERT INTO ledger_entries (transaction_id, account_id, amount_units) VALUES "
        + ", ".join(f"($1, ${2 * i + 2}, ${2 * i + 3})" for i in range(count))
    )
    for count in range(1, 5)
}


def insufficient_funds(cost: int, owner_id: str, kind: str, balance: int) -> PaymentRequired:
    return PaymentRequired(
        f"This costs {units_text(cost)} AITBC; the {kind} balance of {owner_id!r} is "
        f"{units_text(balance)}.",
        code="insufficient_funds",
    )


async def _apply(conn: Conn, leg: Leg) -> int:
    if leg.amount_units < 0 and leg.kind != EXTERNAL:
        account_id = await conn.fetchval(_DEBIT, leg.owner_id, leg.kind, leg.amount_units)
        if account_id is None:
            balance = await conn.fetchval(_BALANCE, leg.owner_id, leg.kind) or 0
            raise insufficient_funds(-leg.amount_units, leg.owner_id, leg.kind, balance)
        return int(account_id)
    return int(await conn.fetchval(_CREDIT, leg.owner_id, leg.kind, leg.amount_units))


async def post(
    conn: Conn,
    *,
    kind: str,
    legs: list[Leg],
    now: datetime,
    booking_id: str | None = None,
) -> str | None:
    """Post a balanced transaction; its id, or None when every leg is zero."""
    legs = [leg for leg in legs if leg.amount_units != 0]
    if sum(leg.amount_units for leg in legs) != 0:
        raise ValueError(f"unbalanced {kind} transaction: {legs}")
    if not legs:
        return None
    applied: list[int] = []
    for leg in sorted(legs, key=lambda leg: (leg.owner_id, leg.kind)):
        applied += [await _apply(conn, leg), leg.amount_units]
    transaction_id = new_id("txn")
    await conn.execute(_TRANSACTION, transaction_id, kind, booking_id, now)
    await conn.execute(_ENTRIES[len(legs)], transaction_id, *applied)
    return transaction_id


async def deposit(conn: Conn, *, owner_id: str, amount_units: int, now: datetime) -> str:
    transaction_id = await post(
        conn,
        kind="deposit",
        legs=[Leg(WORLD_OWNER, EXTERNAL, -amount_units), Leg(owner_id, "main", amount_units)],
        now=now,
    )
    assert transaction_id is not None
    return transaction_id
