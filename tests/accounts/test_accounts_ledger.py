"""Accounts: admin deposits from the external account, balances and escrow as their owner sees
them, the ledger history; and the invariant checker itself, which must catch a broken ledger."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from aitbc.db import create_db_engine
from aitbc.ledger import postings
from tests.accounts.ledger_invariants import assert_ledger_invariants, snapshot
from tests.bookings.booking_support import account, ledger_lines, market, parse_time, release_gpu
from tests.support.api import ADMIN_KEY, Api
from tests.support.market import advance, booked, deposit
from tests.support.responses import assert_error


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(request: pytest.FixtureRequest, database_url: str) -> Iterator[None]:
    yield
    if "corrupt" not in request.node.name:
        assert_ledger_invariants(database_url)


def test_deposit_credits_the_owner_from_the_external_account(api: Api, database_url: str) -> None:
    client = api.key("client", "c1")
    body = deposit(api, "c1", "12.345678")
    assert body["transaction_id"].startswith("txn_")
    assert body["amount"] == "12.345678"
    assert body["account"] == {
        "owner_id": "c1",
        "currency": "AITBC",
        "balance": "12.345678",
        "escrow": "0.000000",
        "unsettled": "0.000000",
    }
    assert account(api, client) == body["account"]
    deposit(api, "c1", "0.000001")
    assert account(api, client)["balance"] == "12.345679"
    figures = assert_ledger_invariants(database_url)
    assert figures.external == -12_345_679
    assert figures.held_by_users == 12_345_679
    assert figures.transactions["deposit"] == 2


def test_an_unknown_owner_is_credited_only_when_asked_to_create_its_account(
    api: Api, database_url: str
) -> None:
    before = snapshot(database_url)
    path = "/v1/admin/accounts/futur-client/deposit"
    typo = api.call("POST", path, ADMIN_KEY, json={"amount": "5"})
    assert typo.status_code == 404 and typo.json()["error"] == "owner_not_found", typo.text
    assert "create=true" in typo.json()["detail"]
    assert snapshot(database_url) == before
    deposit(api, "future-client", "5")  # the helper asks to create
    key = api.key("client", "future-client")
    assert account(api, key)["balance"] == "5.000000"
    # Known now (it has an account and a key): later deposits need no flag.
    deposit(api, "future-client", "1")


def test_fresh_owner_has_zero_everywhere(api: Api) -> None:
    miner = api.key("miner", "m9")
    assert account(api, miner) == {
        "owner_id": "m9",
        "currency": "AITBC",
        "balance": "0.000000",
        "escrow": "0.000000",
        "unsettled": "0.000000",
    }
    assert ledger_lines(api, miner) == []


@pytest.mark.parametrize(
    "amount", ["0", "-1", "0.0000001", "1000000000.000001", "abc", None, "NaN", "Infinity"]
)
def test_bad_deposit_amount_is_422(api: Api, database_url: str, amount: object) -> None:
    before = snapshot(database_url)
    response = api.call("POST", "/v1/admin/accounts/c1/deposit", ADMIN_KEY, json={"amount": amount})
    assert_error(response, 422, "validation_error")
    assert snapshot(database_url) == before


def test_largest_deposit_is_allowed(api: Api) -> None:
    assert deposit(api, "c1", "1000000000")["account"]["balance"] == "1000000000.000000"


def test_deposits_stop_at_the_most_the_ledger_holds(
    api: Api, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past 2**63 micro-tokens a balance would no longer fit its column (and answered 500):
    deposits in all stop at postings.MOST_UNITS, here made 100 tokens."""
    monkeypatch.setattr(postings, "MOST_UNITS", 100_000_000)
    deposit(api, "c1", "60")
    assert deposit(api, "c2", "40")["account"]["balance"] == "40.000000"  # exactly the most
    before = snapshot(database_url)
    path = "/v1/admin/accounts/c1/deposit"
    refused = api.call("POST", path, ADMIN_KEY, json={"amount": "0.000001"})
    assert_error(refused, 422, "deposits_too_large")
    assert snapshot(database_url) == before


def test_deposit_needs_an_admin_and_a_sane_owner_id(api: Api, database_url: str) -> None:
    client, miner = api.key("client", "c1"), api.key("miner", "m1")
    path = "/v1/admin/accounts/c1/deposit"
    before = snapshot(database_url)
    assert_error(api.call("POST", path, client, json={"amount": "5"}), 403, "wrong_role")
    assert_error(api.call("POST", path, miner, json={"amount": "5"}), 403, "wrong_role")
    assert_error(api.call("POST", path, None, json={"amount": "5"}), 401, "authentication_required")
    assert_error(
        api.call("POST", "/v1/admin/accounts/bad%20owner/deposit", ADMIN_KEY, json={"amount": "5"}),
        422,
        "validation_error",
    )
    assert_error(
        api.call("POST", path, ADMIN_KEY, json={"amount": "5", "memo": "x"}),
        422,
        "validation_error",
    )
    assert snapshot(database_url) == before


def test_accounts_me_needs_a_key(api: Api) -> None:
    assert_error(api.call("GET", "/v1/accounts/me"), 401, "authentication_required")
    assert_error(api.call("GET", "/v1/accounts/me/ledger"), 401, "authentication_required")


def test_ledger_lists_the_owners_entries_newest_first(api: Api) -> None:
    m = market(api)
    t0 = api.clock.now()
    body = booked(api, m.client, m.gpu, 1)
    advance(api, 900, m.miner)
    assert release_gpu(api, m.client, m.gpu).status_code == 200
    lines = ledger_lines(api, m.client)
    assert [line["kind"] for line in lines] == [
        "booking_released",
        "booking_released",
        "booking_escrow",
        "booking_escrow",
        "deposit",
    ]
    assert {(line["account"], line["amount"]) for line in lines[:2]} == {
        ("escrow", "-3.600000"),
        ("main", "2.700000"),
    }
    assert {(line["account"], line["amount"]) for line in lines[2:4]} == {
        ("escrow", "3.600000"),
        ("main", "-3.600000"),
    }
    assert (lines[4]["account"], lines[4]["amount"]) == ("main", "100.000000")
    assert [line["entry_id"] for line in lines] == sorted(
        (line["entry_id"] for line in lines), reverse=True
    )
    assert {line["booking_id"] for line in lines[:4]} == {body["booking_id"]}
    assert lines[4]["booking_id"] is None
    assert parse_time(lines[0]["created_at"]) == t0 + timedelta(seconds=900)
    assert parse_time(lines[4]["created_at"]) == t0
    # One transaction, two lines.
    assert lines[0]["transaction_id"] == lines[1]["transaction_id"] != lines[2]["transaction_id"]
    # Paging.
    assert ledger_lines(api, m.client, limit=2) == lines[:2]
    assert ledger_lines(api, m.client, limit=2, offset=4) == lines[4:]
    assert_error(
        api.call("GET", "/v1/accounts/me/ledger", m.client, params={"limit": 0}),
        422,
        "validation_error",
    )
    # The other client sees only its deposit.
    assert [line["kind"] for line in ledger_lines(api, m.other)] == ["deposit"]


# The checker must catch what it claims to catch.


def _corrupt(database_url: str, statement: str) -> None:
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            "UPDATE accounts SET balance_units = balance_units + 1 WHERE owner_id = 'c1' "
            "AND kind = 'main'",
            "entries sum to",
        ),
        (
            "UPDATE ledger_entries SET amount_units = amount_units + 1 WHERE id = "
            "(SELECT MIN(id) FROM ledger_entries)",
            "sums to",
        ),
        ("UPDATE bookings SET status = 'completed'", "escrow of c1"),
        (
            "UPDATE bookings SET start_time = (SELECT MIN(start_time) FROM bookings), "
            "end_time = (SELECT MAX(end_time) FROM bookings)",
            "overlap",
        ),
    ],
)
def test_the_checker_catches_a_corrupt_ledger(
    api: Api, database_url: str, statement: str, message: str
) -> None:
    m = market(api)
    booked(api, m.client, m.gpu, 1)
    booked(api, m.other, m.gpu, 1, start_time=(api.clock.now() + timedelta(hours=2)).isoformat())
    assert_ledger_invariants(database_url)
    if message == "overlap" and database_url.startswith("postgresql"):
        # PostgreSQL's exclusion constraint does not even let the overlap be written.
        with pytest.raises(IntegrityError, match="ex_bookings_no_overlap"):
            _corrupt(database_url, statement)
        return
    _corrupt(database_url, statement)
    with pytest.raises(AssertionError, match=message):
        assert_ledger_invariants(database_url)


def test_the_database_itself_refuses_a_negative_balance(api: Api, database_url: str) -> None:
    deposit(api, "c1", "1")
    with pytest.raises(IntegrityError):
        _corrupt(
            database_url,
            "UPDATE accounts SET balance_units = -1 WHERE owner_id = 'c1' AND kind = 'main'",
        )
    # The external account alone is below zero: it is where deposits come from.
    assert assert_ledger_invariants(database_url).external == -1_000_000
