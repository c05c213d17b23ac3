"""With a platform fee configured, floor(charged * bps / 10000) of every charge goes to the
account of the owner ``platform``; the provider gets the rest, the client's side is unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from aitbc.config import Settings
from tests.accounts.ledger_invariants import assert_ledger_invariants
from tests.bookings.booking_support import (
    account,
    figures,
    ledger_lines,
    market,
    release_booking,
    release_gpu,
)
from tests.support.api import Api, settings_for
from tests.support.market import advance, booked
from tests.support.money import money, seconds_of, split, units

FEE_BPS = 250  # 2.5 %


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url, platform_fee_bps=FEE_BPS)


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(database_url: str) -> Iterator[None]:
    yield
    assert_ledger_invariants(database_url)


@pytest.mark.parametrize(
    ("price", "hours", "elapsed", "charged", "fee"),
    [
        ("3.6", "2", 1800, "1.800000", "0.045000"),
        # 114352 * 250 / 10000 = 2858.8 → the fee is floored to 2858
        ("0.333333", "1.5", 1234.5, "0.114352", "0.002858"),
        # 39 * 250 / 10000 = 0.975 → no fee at all
        ("0.0351", "1", 3.2, "0.000039", "0.000000"),
    ],
)
def test_fee_on_an_early_release_goes_to_the_platform(
    api: Api, database_url: str, price: str, hours: str, elapsed: float, charged: str, fee: str
) -> None:
    m = market(api, price=price)
    platform = api.key("admin", "platform")
    body = booked(api, m.client, m.gpu, hours)
    advance(api, elapsed, m.miner)
    result = release_gpu(api, m.client, m.gpu).json()
    assert result["amount_charged"] == charged
    expected = split(units(body["total_cost"]), seconds_of(hours), result["used_seconds"], FEE_BPS)
    assert money(expected.charged) == charged and money(expected.fee) == fee

    provider = money(units(charged) - units(fee))
    assert figures(api, m.miner) == (provider, "0.000000")
    assert figures(api, platform) == (fee, "0.000000")
    # The client pays the charge, not more: the fee comes out of the provider's share.
    assert figures(api, m.client) == (money(units("100") - units(charged)), "0.000000")
    db = assert_ledger_invariants(database_url)
    assert db.balance("platform") == units(fee)
    assert db.balance("m1") == units(provider)
    released = [line for line in ledger_lines(api, platform) if line["kind"] == "booking_released"]
    assert [line["amount"] for line in released] == ([fee] if units(fee) else [])


def test_fee_on_a_completed_booking_is_shown_before_and_posted_after_the_sweep(
    api: Api, app: object, database_url: str
) -> None:
    m = market(api)
    platform = api.key("admin", "platform")
    booked(api, m.client, m.gpu, 2)  # 7.2, fee 0.18
    advance(api, 7200, m.miner)
    miner_view = account(api, m.miner)
    assert (miner_view["balance"], miner_view["unsettled"]) == ("7.020000", "7.020000")
    # The platform's share is due at the same moment as the provider's.
    platform_view = account(api, platform)
    assert (platform_view["balance"], platform_view["unsettled"]) == ("0.180000", "0.180000")
    assert app.state.sweeper.run_once() == 1  # type: ignore[attr-defined]
    assert account(api, m.miner)["balance"] == "7.020000"
    assert account(api, m.miner)["unsettled"] == "0.000000"
    assert figures(api, platform) == ("0.180000", "0.000000")
    assert assert_ledger_invariants(database_url).balance("platform") == 180_000


def test_cancelled_reservation_pays_no_fee(api: Api, database_url: str) -> None:
    m = market(api)
    start = api.clock.now() + timedelta(hours=1)
    body = booked(api, m.client, m.gpu, 1, start_time=start.isoformat())
    assert release_booking(api, m.client, body["booking_id"]).json()["status"] == "cancelled"
    assert figures(api, m.client) == ("100.000000", "0.000000")
    assert assert_ledger_invariants(database_url).balance("platform") == 0
