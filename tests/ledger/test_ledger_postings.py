"""Double-entry postings on the real database, called directly (no HTTP): a transaction's
legs balance or it is refused, a debit never takes a balance below zero, a refused posting
changes nothing, and the books sum to zero after any mix of postings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from aitbc.db import create_db_engine
from aitbc.errors import PaymentRequired
from aitbc.ledger.postings import Leg, deposit, post
from aitbc.models.account import ESCROW, EXTERNAL, MAIN, WORLD_OWNER
from tests.accounts.ledger_invariants import assert_ledger_invariants
from tests.support import store

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def balances(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT owner_id, kind, balance_units FROM accounts"))
        return {(owner, kind): int(units) for owner, kind, units in rows}


def posting(engine: Engine, kind: str, legs: list[Leg]) -> str | None:
    """One posting in its own transaction, committed when it succeeds."""
    return store.write(
        engine.url.render_as_string(hide_password=False),
        partial(post, kind=kind, legs=legs, now=NOW),
    )


def fund(engine: Engine, owner: str, units: int) -> None:
    url = engine.url.render_as_string(hide_password=False)
    store.write(url, partial(deposit, owner_id=owner, amount_units=units, now=NOW))


def test_a_deposit_moves_money_in_from_the_outside_world(engine: Engine, database_url: str) -> None:
    fund(engine, "c1", 5_000_000)
    assert balances(engine) == {("c1", MAIN): 5_000_000, (WORLD_OWNER, EXTERNAL): -5_000_000}
    assert_ledger_invariants(database_url)


def test_an_unbalanced_transaction_is_refused_before_anything_is_written(engine: Engine) -> None:
    fund(engine, "c1", 1_000_000)
    before = balances(engine)
    with pytest.raises(ValueError, match="unbalanced"):
        posting(engine, "transfer", [Leg("c1", MAIN, -10), Leg("c2", MAIN, 9)])
    assert balances(engine) == before


def test_a_debit_past_the_balance_is_refused_and_changes_nothing(engine: Engine) -> None:
    fund(engine, "c1", 1_000_000)
    before = balances(engine)
    with pytest.raises(PaymentRequired) as refused:
        posting(
            engine, "booking_escrow", [Leg("c1", MAIN, -1_000_001), Leg("c1", ESCROW, 1_000_001)]
        )
    assert "1.000001" in refused.value.detail and "1.000000" in refused.value.detail
    assert balances(engine) == before


def test_a_transaction_of_zero_legs_posts_nothing(engine: Engine) -> None:
    assert posting(engine, "booking_released", [Leg("c1", MAIN, 0), Leg("m1", MAIN, 0)]) is None
    assert balances(engine) == {}


owners = st.sampled_from(["c1", "c2", "m1"])
moves = st.lists(
    st.tuples(owners, st.sampled_from([MAIN, ESCROW]), owners, st.integers(1, 3_000_000)),
    max_size=12,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(moves=moves)
def test_any_mix_of_transfers_keeps_the_books_summing_to_zero(
    engine: Engine, database_url: str, moves: list[tuple[str, str, str, int]]
) -> None:
    """Each move takes ``units`` from one owner's account to another's main account; one that
    would overdraw is refused whole (a move from a main account to itself nets to nothing and
    needs no cover). The stored balances follow a plain model exactly."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_entries"))
        conn.execute(text("DELETE FROM ledger_transactions"))
        conn.execute(text("DELETE FROM accounts"))
    fund(engine, "c1", 2_000_000)
    model = {("c1", MAIN): 2_000_000, (WORLD_OWNER, EXTERNAL): -2_000_000}
    for source, kind, target, units in moves:
        legs = [Leg(source, kind, -units), Leg(target, MAIN, units)]
        if (source, kind) != (target, MAIN) and model.get((source, kind), 0) < units:
            with pytest.raises(PaymentRequired):
                posting(engine, "transfer", legs)
            continue
        posting(engine, "transfer", legs)
        model[(source, kind)] = model.get((source, kind), 0) - units
        model[(target, MAIN)] = model.get((target, MAIN), 0) + units
    stored = balances(engine)
    assert {k: v for k, v in stored.items() if v} == {k: v for k, v in model.items() if v}
    assert sum(stored.values()) == 0
    assert_ledger_invariants(database_url)
