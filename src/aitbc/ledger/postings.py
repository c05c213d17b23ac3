"""Double-entry postings: the one way money moves. Every transaction's legs sum to zero; a
debit that would take a balance below zero is refused (and a CHECK constraint stands behind
the refusal).

``post_many`` posts several transactions at once and touches each account once, locking the
accounts in one fixed order (owner, then kind), so concurrent postings cannot deadlock on
each other. On PostgreSQL it is one statement (two the first time an account is used); on
SQLite, whose writers are serialized, it is a statement per account and per table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from aitbc.errors import Invalid, PaymentRequired
from aitbc.kit.ids import new_id
from aitbc.kit.money import units_text
from aitbc.models.account import EXTERNAL, WORLD_OWNER
from aitbc.store.conn import Conn
from aitbc.store.query import Params, Query, built


@dataclass(frozen=True, slots=True)
class Leg:
    owner_id: str
    kind: str
    amount_units: int


@dataclass(frozen=True, slots=True)
class Posting:
    kind: str
    legs: Sequence[Leg]
    booking_id: str | None = None


@dataclass(frozen=True, slots=True)
class Along:
    """Rows a caller writes in the same PostgreSQL statement as its postings: WITH
    clauses (``name AS (...)``, comma-separated) whose parameters are $1 to $len(args).
    They are written whatever the posting finds; a refused posting raises, and the
    caller's transaction rolls them back."""

    ctes: str
    args: tuple[Any, ...]


Account = tuple[str, str]  # (owner_id, kind)


class _Batch(NamedTuple):
    touched: list[tuple[Account, int]]  # each account's change, in locking order
    transactions: list[tuple[str, str, str | None]]  # (id, kind, booking_id)
    entries: list[tuple[str, Leg]]  # (transaction id, leg)
    now: datetime


# SQLite: a debit is a conditional update; a credit (or the outside world's debit: the one
# account that may go negative) creates the account on first use.
_DEBIT = Query(
    "UPDATE accounts SET balance_units = balance_units + $3 "
    "WHERE owner_id = $1 AND kind = $2 AND balance_units + $3 >= 0 RETURNING id"
)
_CREDIT = Query(
    "INSERT INTO accounts (owner_id, kind, balance_units) VALUES ($1, $2, $3) "
    "ON CONFLICT (owner_id, kind) DO UPDATE "
    "SET balance_units = accounts.balance_units + excluded.balance_units RETURNING id"
)
_TRANSACTION = Query(
    "INSERT INTO ledger_transactions (id, kind, booking_id, created_at) VALUES ($1, $2, $3, $4)"
)
_ENTRY = Query(
    "INSERT INTO ledger_entries (transaction_id, account_id, amount_units) VALUES ($1, $2, $3)"
)
# PostgreSQL: lock every account in order, check that each balance stays covered, then move
# the money and write the transactions and their entries, all or nothing, in one statement.
# ``locked`` is read before anything moves (the scalar subqueries make it so), and a row
# locked FOR UPDATE is read at its latest committed version.
_POST_AT_ONCE = Query.postgresql_only(
    """
    WITH v AS (
        SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::bigint[])
        WITH ORDINALITY AS v(owner_id, kind, delta, n)),
    locked AS (
        SELECT a.id, a.owner_id, a.kind, v.delta, a.balance_units + v.delta AS after
        FROM accounts a JOIN v ON a.owner_id = v.owner_id AND a.kind = v.kind
        ORDER BY v.n FOR UPDATE OF a),
    verdict AS (
        SELECT count(*) = cardinality($1::varchar[])
            AND coalesce(bool_and(after >= 0 OR kind = 'external'), true) AS ok,
            count(*) AS found FROM locked),
    moved AS (
        UPDATE accounts a SET balance_units = a.balance_units + l.delta FROM locked l
        WHERE a.id = l.id AND (SELECT ok FROM verdict)),
    written AS (
        INSERT INTO ledger_transactions (id, kind, booking_id, created_at)
        SELECT t.id, t.kind, t.booking_id, $4
        FROM unnest($5::varchar[], $6::varchar[], $7::varchar[]) AS t(id, kind, booking_id)
        WHERE (SELECT ok FROM verdict)),
    entries AS (
        INSERT INTO ledger_entries (transaction_id, account_id, amount_units)
        SELECT e.id, l.id, e.amount
        FROM unnest($8::varchar[], $9::varchar[], $10::varchar[], $11::bigint[])
            AS e(id, owner_id, kind, amount)
        JOIN locked l ON l.owner_id = e.owner_id AND l.kind = e.kind
        WHERE (SELECT ok FROM verdict))
    SELECT ok, found FROM verdict
    """
)
_ENSURE_ACCOUNTS = Query.postgresql_only(
    "INSERT INTO accounts (owner_id, kind, balance_units) "
    "SELECT owner_id, kind, 0 FROM unnest($1::varchar[], $2::varchar[]) AS v(owner_id, kind) "
    "ORDER BY owner_id, kind ON CONFLICT (owner_id, kind) DO NOTHING"
)
_BALANCE = Query("SELECT balance_units FROM accounts WHERE owner_id = $1 AND kind = $2")


def insufficient_funds(cost: int, owner_id: str, kind: str, balance: int) -> PaymentRequired:
    return PaymentRequired(
        f"This costs {units_text(cost)} AITBC; the {kind} balance of {owner_id!r} is "
        f"{units_text(balance)}.",
        code="insufficient_funds",
    )


async def post(
    conn: Conn,
    *,
    kind: str,
    legs: Sequence[Leg],
    now: datetime,
    booking_id: str | None = None,
    along: Along | None = None,
) -> str | None:
    """Post one balanced transaction; its id, or None when every leg is zero."""
    return (await post_many(conn, [Posting(kind, legs, booking_id)], now=now, along=along))[0]


async def post_many(
    conn: Conn, postings: Sequence[Posting], *, now: datetime, along: Along | None = None
) -> list[str | None]:
    """Post balanced transactions together, all or none; their ids (None for a posting whose
    legs are all zero). A debit no balance covers raises ``insufficient_funds`` and the
    caller's transaction must roll back. ``along``: rows for the same statement (PostgreSQL:
    then the postings are chained, as one posting is; meant for a few)."""
    ids: list[str | None] = []
    entries: list[tuple[str, Leg]] = []
    transactions: list[tuple[str, str, str | None]] = []
    deltas: dict[Account, int] = defaultdict(int)
    for posting in postings:
        legs = [leg for leg in posting.legs if leg.amount_units != 0]
        if sum(leg.amount_units for leg in legs) != 0:
            raise ValueError(f"unbalanced {posting.kind} transaction: {legs}")
        if not legs:
            ids.append(None)
            continue
        transaction_id = new_id("txn")
        ids.append(transaction_id)
        transactions.append((transaction_id, posting.kind, posting.booking_id))
        for leg in legs:
            entries.append((transaction_id, leg))
            deltas[(leg.owner_id, leg.kind)] += leg.amount_units
    if not transactions:
        if along is not None:  # nothing to post: the rows along are written all the same
            await conn.execute(built(f"WITH {along.ctes} SELECT 1"), *along.args)
    else:
        batch = _Batch(sorted(deltas.items()), transactions, entries, now)
        if conn.dialect == "postgresql" and (len(transactions) == 1 or along is not None):
            await _post_chained(conn, batch, along)
        elif conn.dialect == "postgresql":
            await _post_on_postgresql(conn, batch)
        else:
            assert along is None, "rows go along a posting on PostgreSQL only"
            await _post_on_sqlite(conn, batch)
    return ids


async def _post_on_sqlite(conn: Conn, batch: _Batch) -> None:
    touched, transactions, entries, now = batch
    account_ids: dict[Account, int] = {}
    for (owner_id, kind), delta in touched:
        creates = delta >= 0 or kind == EXTERNAL
        account_id = await conn.fetchval(_CREDIT if creates else _DEBIT, owner_id, kind, delta)
        if account_id is None:
            raise await _shortfall(conn, [((owner_id, kind), delta)])
        account_ids[(owner_id, kind)] = int(account_id)
    await conn.executemany(_TRANSACTION, [(*t, now) for t in transactions])
    await conn.executemany(
        _ENTRY,
        [(txn, account_ids[(leg.owner_id, leg.kind)], leg.amount_units) for txn, leg in entries],
    )


async def _post_on_postgresql(conn: Conn, batch: _Batch) -> None:
    touched, transactions, entries, now = batch
    owners = [owner for (owner, _), _ in touched]
    kinds = [kind for (_, kind), _ in touched]
    args = (
        owners,
        kinds,
        [delta for _, delta in touched],
        now,
        *(list(column) for column in zip(*transactions, strict=True)),
        [txn for txn, _ in entries],
        [leg.owner_id for _, leg in entries],
        [leg.kind for _, leg in entries],
        [leg.amount_units for _, leg in entries],
    )
    row = await conn.fetchrow(_POST_AT_ONCE, *args)
    assert row is not None
    if not row["ok"] and row["found"] < len(touched):  # an account's first use
        await conn.execute(_ENSURE_ACCOUNTS, owners, kinds)
        row = await conn.fetchrow(_POST_AT_ONCE, *args)
        assert row is not None
    if not row["ok"]:
        raise await _shortfall(conn, touched)


async def _post_chained(conn: Conn, batch: _Batch, along: Along | None) -> None:
    """The transactions (and the rows along with them) in one statement: a chain of WITH
    clauses, one an account in locking order, each run only after the one before it
    succeeded (a credit creates its account, a debit updates only a covered balance), then
    the transactions and their entries from the end of the chain."""
    touched, transactions, entries, now = batch
    params = Params(*(along.args if along else ()))
    clauses = [along.ctes] if along else []
    index: dict[Account, int] = {}
    for i, ((owner_id, kind), delta) in enumerate(touched):
        index[(owner_id, kind)] = i
        o, k, d = params.add(owner_id), params.add(kind), params.add(delta)
        if delta >= 0 or kind == EXTERNAL:
            source = f" FROM a{i - 1}" if i else ""
            clauses.append(
                f"a{i} AS (INSERT INTO accounts (owner_id, kind, balance_units) "
                f"SELECT {o}::varchar, {k}::varchar, {d}::bigint{source} "
                "ON CONFLICT (owner_id, kind) DO UPDATE "
                "SET balance_units = accounts.balance_units + excluded.balance_units RETURNING id)"
            )
        else:
            after = f" AND EXISTS (SELECT 1 FROM a{i - 1})" if i else ""
            clauses.append(
                f"a{i} AS (UPDATE accounts SET balance_units = balance_units + {d}::bigint "
                f"WHERE owner_id = {o} AND kind = {k} AND balance_units + {d}::bigint >= 0"
                f"{after} RETURNING id)"
            )
    last = f"a{len(touched) - 1}"
    at = params.add(now)
    names = {transaction_id: params.add(transaction_id) for transaction_id, _, _ in transactions}
    made = ", ".join(
        f"({names[transaction_id]}::varchar, {params.add(kind)}::varchar, "
        f"{params.add(booking_id)}::varchar, {at}::timestamp)"
        for transaction_id, kind, booking_id in transactions
    )
    clauses.append(
        "t AS (INSERT INTO ledger_transactions (id, kind, booking_id, created_at) "
        f"SELECT v.* FROM (VALUES {made}) AS v(id, kind, booking_id, created_at), {last})"
    )
    rows = " UNION ALL ".join(
        f"SELECT {names[transaction_id]}::varchar, x.id, {params.add(leg.amount_units)}::bigint "
        f"FROM a{index[(leg.owner_id, leg.kind)]} x, {last}"
        for transaction_id, leg in entries
    )
    clauses.append(
        f"e AS (INSERT INTO ledger_entries (transaction_id, account_id, amount_units) {rows})"
    )
    text = f"WITH {', '.join(clauses)} SELECT count(*) FROM {last}"
    if not await conn.fetchval(built(text), *params.values):
        raise await _shortfall(conn, touched)


async def _shortfall(conn: Conn, touched: list[tuple[Account, int]]) -> PaymentRequired:
    """The refusal for the first debit that its balance does not cover."""
    for (owner_id, kind), delta in touched:
        if delta < 0 and kind != EXTERNAL:
            balance = await conn.fetchval(_BALANCE, owner_id, kind) or 0
            if balance + delta < 0:
                return insufficient_funds(-delta, owner_id, kind, balance)
    raise AssertionError(f"no debit short of funds among {touched}")


# All the money deposited, at most (a trillion tokens): every balance, the sum of the
# outside world's, then fits the 64-bit columns with room to spare.
MOST_UNITS = 10**18
_DEPOSITED = Query("SELECT -balance_units FROM accounts WHERE owner_id = $1 AND kind = $2")


async def deposit(conn: Conn, *, owner_id: str, amount_units: int, now: datetime) -> str:
    deposited = await conn.fetchval(_DEPOSITED, WORLD_OWNER, EXTERNAL) or 0
    if deposited + amount_units > MOST_UNITS:
        raise Invalid(
            f"The deposits in all would pass {units_text(MOST_UNITS)} tokens, the most the "
            "ledger holds.",
            code="deposits_too_large",
        )
    transaction_id = await post(
        conn,
        kind="deposit",
        legs=[Leg(WORLD_OWNER, EXTERNAL, -amount_units), Leg(owner_id, "main", amount_units)],
        now=now,
    )
    assert transaction_id is not None
    return transaction_id
