"""Invariants of the money and booking tables, read straight from the database.

``assert_ledger_invariants(url)`` checks:

- every ledger transaction has at least two entries and its entries sum to zero;
- every account's stored balance equals the sum of its entries;
- no balance other than the ``external`` one is negative;
- the sum of all balances is zero;
- no two open bookings on one GPU overlap in time;
- a client's escrow equals the total cost of its open bookings, less the offline time
  refunded while they went on;
- every booking has one order and one escrow posting; a closed booking has exactly one
  closing posting when something was still held for it (an open one none), and
  ``charged + refunded (+ offline refunds) == total``.

It returns the figures it read, for tests that want to compare totals."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sqlalchemy import Engine, create_engine, func, select

from aitbc.db import create_db_engine
from aitbc.models import Account, Booking, LedgerEntry, LedgerTransaction, Order

EXTERNAL = "external"
CLOSING_KINDS = (
    "booking_completed",
    "booking_released",
    "booking_cancelled",
    "booking_interrupted",
    "booking_preempted",
)


@dataclass
class LedgerFigures:
    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    transactions: Counter[str] = field(default_factory=Counter)
    open_bookings: int = 0
    closed_bookings: int = 0

    @property
    def external(self) -> int:
        return sum(units for (_, kind), units in self.balances.items() if kind == EXTERNAL)

    @property
    def held_by_users(self) -> int:
        """Everything not in the external account: balances, escrow, earnings, fees."""
        return sum(units for (_, kind), units in self.balances.items() if kind != EXTERNAL)

    def balance(self, owner_id: str, kind: str = "main") -> int:
        return self.balances.get((owner_id, kind), 0)


class LedgerChecker:
    """Holds one engine so that checking after every step of a long test stays cheap."""

    def __init__(self, database_url: str) -> None:
        self.engine: Engine = (
            create_db_engine(database_url)
            if database_url.startswith("sqlite")
            else create_engine(database_url, pool_size=2)
        )

    def close(self) -> None:
        self.engine.dispose()

    def check(self) -> LedgerFigures:
        problems: list[str] = []
        with self.engine.connect() as conn:
            accounts = conn.execute(
                select(Account.id, Account.owner_id, Account.kind, Account.balance_units)
            ).all()
            entries = conn.execute(
                select(LedgerEntry.transaction_id, LedgerEntry.account_id, LedgerEntry.amount_units)
            ).all()
            transactions = conn.execute(
                select(LedgerTransaction.id, LedgerTransaction.kind, LedgerTransaction.booking_id)
            ).all()
            bookings = conn.execute(
                select(
                    Booking.id,
                    Booking.gpu_id,
                    Booking.client_id,
                    Booking.status,
                    Booking.start_time,
                    Booking.end_time,
                    Booking.ended_at,
                    Booking.total_units,
                    Booking.charged_units,
                    Booking.refunded_units,
                    Booking.outage_refund_units,
                )
            ).all()
            orders_per_booking: dict[str, int] = dict(
                conn.execute(
                    select(Order.booking_id, func.count()).group_by(Order.booking_id)
                ).all()
            )
            conn.rollback()

        figures = LedgerFigures()
        by_account: dict[int, int] = defaultdict(int)
        by_transaction: dict[str, list[int]] = defaultdict(list)
        for transaction_id, account_id, amount in entries:
            by_account[account_id] += amount
            by_transaction[transaction_id].append(amount)

        for txn_id, kind, _ in transactions:
            figures.transactions[kind] += 1
            amounts = by_transaction.pop(txn_id, [])
            if len(amounts) < 2:
                problems.append(f"transaction {txn_id} ({kind}) has {len(amounts)} entries")
            if sum(amounts) != 0:
                problems.append(f"transaction {txn_id} ({kind}) sums to {sum(amounts)}")
        if by_transaction:
            problems.append(f"entries without a transaction: {sorted(by_transaction)}")

        known_accounts = {row.id for row in accounts}
        orphans = set(by_account) - known_accounts
        if orphans:
            problems.append(f"entries on unknown accounts {sorted(orphans)}")
        for account_id, owner_id, kind, balance in accounts:
            figures.balances[(owner_id, kind)] = balance
            if balance != by_account.get(account_id, 0):
                problems.append(
                    f"account {owner_id}/{kind} stores {balance} but its entries sum to "
                    f"{by_account.get(account_id, 0)}"
                )
            if kind != EXTERNAL and balance < 0:
                problems.append(f"account {owner_id}/{kind} is negative: {balance}")
        if accounts and sum(row.balance_units for row in accounts) != 0:
            problems.append(f"balances sum to {sum(row.balance_units for row in accounts)}")

        escrow_postings = Counter(b for _, k, b in transactions if k == "booking_escrow")
        closings = Counter(b for _, k, b in transactions if k in CLOSING_KINDS)
        open_by_gpu: dict[str, list[Any]] = defaultdict(list)
        escrow_due: dict[str, int] = defaultdict(int)
        for b in bookings:
            if orders_per_booking.get(b.id, 0) != 1:
                problems.append(f"booking {b.id} has {orders_per_booking.get(b.id, 0)} orders")
            expected_escrow = 1 if b.total_units > 0 else 0  # nothing to post for a free GPU
            if escrow_postings[b.id] != expected_escrow:
                problems.append(f"booking {b.id} has {escrow_postings[b.id]} escrow postings")
            if b.status == "open":
                figures.open_bookings += 1
                open_by_gpu[b.gpu_id].append(b)
                escrow_due[b.client_id] += b.total_units - b.outage_refund_units
                if closings[b.id]:
                    problems.append(f"open booking {b.id} has a closing posting")
            else:
                figures.closed_bookings += 1
                # Nothing left in escrow at the end (a free GPU, or all of it refunded as
                # offline time) moves no money, so nothing is posted.
                held = b.total_units - b.outage_refund_units
                if closings[b.id] != (1 if held > 0 else 0):
                    problems.append(f"booking {b.id} ({b.status}) closed {closings[b.id]} times")
                if b.charged_units + b.refunded_units + b.outage_refund_units != b.total_units:
                    problems.append(f"booking {b.id}: charged + refunded != total")
        for gpu_id, rows in open_by_gpu.items():
            rows.sort(key=lambda r: r.start_time)
            for earlier, later in pairwise(rows):
                if later.start_time < earlier.end_time:
                    problems.append(
                        f"GPU {gpu_id}: open bookings {earlier.id} and {later.id} overlap"
                    )
        # Every booking, ended or not, held its GPU from its start until it ended: no two
        # of one GPU held it at the same moment, to the microsecond.
        held_by_gpu: dict[str, list[tuple[Any, Any, str]]] = defaultdict(list)
        for b in bookings:
            until = b.end_time if b.ended_at is None else min(b.end_time, b.ended_at)
            if until > b.start_time:
                held_by_gpu[b.gpu_id].append((b.start_time, until, b.id))
        for gpu_id, windows in held_by_gpu.items():
            windows.sort()
            for (_, held_until, first), (second_start, _, second) in pairwise(windows):
                if second_start < held_until:
                    problems.append(
                        f"GPU {gpu_id}: {second} starts {held_until - second_start} "
                        f"before {first} ended"
                    )
        for (owner_id, kind), balance in figures.balances.items():
            if kind == "escrow" and balance != escrow_due.get(owner_id, 0):
                problems.append(
                    f"escrow of {owner_id} is {balance}, its open bookings cost "
                    f"{escrow_due.get(owner_id, 0)}"
                )
        for owner_id, due in escrow_due.items():
            if due and (owner_id, "escrow") not in figures.balances:
                problems.append(f"{owner_id} has open bookings but no escrow account")

        assert not problems, "ledger invariants broken:\n" + "\n".join(problems)
        return figures


def assert_ledger_invariants(database_url: str) -> LedgerFigures:
    checker = LedgerChecker(database_url)
    try:
        return checker.check()
    finally:
        checker.close()


def snapshot(database_url: str) -> dict[str, Any]:
    """Row counts of every table this slice writes, and every balance: equal before and after
    a refused request when nothing changed."""
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as conn:
            counts = {
                model.__tablename__: conn.scalar(select(func.count()).select_from(model))
                for model in (Booking, Order, LedgerTransaction, LedgerEntry, Account)
            }
            counts["order_events"] = conn.scalar(
                select(func.count()).select_from(Order.metadata.tables["order_events"])
            )
            counts["idempotency_keys"] = conn.scalar(
                select(func.count()).select_from(Order.metadata.tables["idempotency_keys"])
            )
            counts["total_bookings"] = conn.scalar(
                select(func.coalesce(func.sum(Order.metadata.tables["gpus"].c.total_bookings), 0))
            )
            balances = sorted(
                conn.execute(select(Account.owner_id, Account.kind, Account.balance_units)).all()
            )
            conn.rollback()
    finally:
        engine.dispose()
    return {"counts": counts, "balances": [tuple(b) for b in balances]}
