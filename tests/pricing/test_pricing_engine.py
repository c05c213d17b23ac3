"""Pins the dynamic pricing function in ``aitbc.pricing.engine`` (documented in
docs/pricing.md): the target multiplier at chosen utilisations and booking rates, its bounds,
the bounded step per update, price scaling and the base price. No database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aitbc.pricing import engine
from tests.pricing import pricing_support as ref


def _bp(value: str) -> int:
    return int(Decimal(value) * 10_000)


# --- the documented table -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("util", "recent", "supply", "expected"),
    [
        ("0", 0, 4, "0.50"),  # idle: the floor
        ("0.5", 0, 4, "0.70"),
        ("0.7", 0, 4, "1.00"),  # the target utilisation: the base price
        ("1.0", 0, 4, "1.45"),
        ("1.0", 5, 1, "2.20"),  # 5 bookings per GPU: the rush is capped at 0.5
        ("1.0", 50, 4, "2.20"),
        ("0.5", 4, 4, "0.85"),  # one booking per GPU adds 0.1 of pressure
        ("0.5", 2, 4, "0.775"),  # half a booking per GPU: 0.05
        ("0.7", 1, 3, "1.0499"),  # rush 0.1 / 3 = 0.0333 (down to a basis point) x 1.5
        ("0.2", 0, 4, "0.50"),  # below the floor: clamped
        ("0.3666", 0, 3, "0.50"),  # 1 - 0.5001: just under the floor
        ("0.4", 0, 4, "0.55"),
        ("0.8", 0, 5, "1.15"),
    ],
)
def test_target_multiplier_at_chosen_demand(
    util: str, recent: int, supply: int, expected: str
) -> None:
    got = engine.target_multiplier_bp(utilisation=_bp(util), recent_bookings=recent, supply=supply)
    assert got == _bp(expected)
    assert Decimal(got) / 10_000 == ref.target(Decimal(util), recent, supply)


def test_target_is_bounded_to_half_and_three() -> None:
    # Utilisation cannot exceed 1.0 through the service, but the function clamps anyway.
    assert engine.target_multiplier_bp(utilisation=30_000, recent_bookings=0, supply=1) == 30_000
    assert engine.target_multiplier_bp(utilisation=10**9, recent_bookings=10**6, supply=1) == 30_000
    assert engine.target_multiplier_bp(utilisation=0, recent_bookings=0, supply=0) == 5_000
    # With no supply, bookings count per one GPU (no division by zero).
    assert engine.target_multiplier_bp(utilisation=0, recent_bookings=3, supply=0) == 5_000
    assert engine.target_multiplier_bp(utilisation=10_000, recent_bookings=3, supply=0) == 19_000
    assert engine.MIN_MULTIPLIER_BP == 5_000 and engine.MAX_MULTIPLIER_BP == 30_000


def test_rush_is_capped() -> None:
    at_cap = engine.target_multiplier_bp(utilisation=7_000, recent_bookings=5, supply=1)
    beyond = engine.target_multiplier_bp(utilisation=7_000, recent_bookings=500, supply=1)
    assert at_cap == beyond == 17_500


@pytest.mark.parametrize(
    ("busy", "supply", "expected"),
    [(0, 0, 0), (0, 3, 0), (1, 2, 5_000), (1, 3, 3_333), (2, 3, 6_666), (3, 3, 10_000)],
)
def test_utilisation_in_basis_points_rounded_down(busy: int, supply: int, expected: int) -> None:
    assert engine.utilisation_bp(busy, supply) == expected
    assert ref.utilisation(busy, supply) == Decimal(expected) / 10_000


# --- the bounded step ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "target", "expected"),
    [
        (10_000, 5_000, 9_000),
        (10_000, 22_000, 11_000),
        (10_000, 10_050, 10_050),
        (10_000, 9_000, 9_000),
        (10_000, 11_000, 11_000),
        (10_000, 10_000, 10_000),
        (5_500, 5_000, 5_000),
        (5_000, 5_000, 5_000),
        (29_500, 30_000, 30_000),
        (30_000, 30_000, 30_000),
        # A stored multiplier outside the bounds is brought back inside.
        (40_000, 40_000, 30_000),
        (1_000, 1_000, 5_000),
    ],
)
def test_next_multiplier_moves_at_most_one_tenth(previous: int, target: int, expected: int) -> None:
    assert engine.next_multiplier_bp(previous, target) == expected


def test_idle_market_steps_down_to_the_floor_and_stays() -> None:
    series, current = [], engine.BP
    idle = engine.target_multiplier_bp(utilisation=0, recent_bookings=0, supply=4)
    for _ in range(7):
        current = engine.next_multiplier_bp(current, idle)
        series.append(current)
    assert series == [9_000, 8_000, 7_000, 6_000, 5_000, 5_000, 5_000]


def test_busy_market_climbs_one_tenth_per_update_to_its_target() -> None:
    series, current = [], engine.BP
    busy = engine.target_multiplier_bp(utilisation=10_000, recent_bookings=10, supply=2)
    assert busy == 22_000
    for _ in range(14):
        current = engine.next_multiplier_bp(current, busy)
        series.append(current)
    assert series == [*range(11_000, 22_001, 1_000), 22_000, 22_000]


@given(
    previous=st.integers(5_000, 30_000),
    util=st.integers(0, 10_000),
    recent=st.integers(0, 1_000),
    supply=st.integers(0, 1_000),
)
def test_any_update_stays_in_bounds_and_within_one_step(
    previous: int, util: int, recent: int, supply: int
) -> None:
    goal = engine.target_multiplier_bp(utilisation=util, recent_bookings=recent, supply=supply)
    assert 5_000 <= goal <= 30_000
    assert Decimal(goal) / 10_000 == ref.target(Decimal(util) / 10_000, recent, supply)
    following = engine.next_multiplier_bp(previous, goal)
    assert 5_000 <= following <= 30_000
    assert abs(following - previous) <= 1_000
    # It moves toward the target, never past it.
    assert min(previous, goal) <= following <= max(previous, goal)


@given(
    util=st.integers(0, 10_000),
    more=st.integers(0, 10_000),
    recent=st.integers(0, 100),
    extra=st.integers(0, 100),
    supply=st.integers(1, 100),
)
def test_target_never_falls_as_demand_rises(
    util: int, more: int, recent: int, extra: int, supply: int
) -> None:
    low = engine.target_multiplier_bp(utilisation=util, recent_bookings=recent, supply=supply)
    high = engine.target_multiplier_bp(
        utilisation=min(10_000, util + more), recent_bookings=recent + extra, supply=supply
    )
    assert low <= high


def test_same_inputs_same_outputs() -> None:
    runs = {
        (
            engine.target_multiplier_bp(utilisation=6_123, recent_bookings=7, supply=9),
            engine.next_multiplier_bp(12_345, 6_000),
            engine.scale(1_234_567, 13_579),
        )
        for _ in range(100)
    }
    assert len(runs) == 1


# --- scaling and the base price -----------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "multiplier", "expected"),
    [
        (1_000_000, 9_000, 900_000),
        (1_000_000, 10_000, 1_000_000),
        (500_000, 14_500, 725_000),
        (123_457, 9_000, 111_111),  # 111111.3 -> down
        (123_457, 10_500, 129_630),  # 129629.85 -> up
        (5, 5_000, 3),  # 2.5 -> half up
        (3, 15_000, 5),  # 4.5 -> half up
        (1, 14_500, 1),  # 1.45 -> 1
        (0, 22_000, 0),
        (1_000_000_000_000, 30_000, 3_000_000_000_000),
    ],
)
def test_scale_rounds_half_up_to_the_micro_unit(units: int, multiplier: int, expected: int) -> None:
    assert engine.scale(units, multiplier) == expected
    price = Decimal(units) / 1_000_000
    assert ref.scaled(price, Decimal(multiplier) / 10_000) * 1_000_000 == expected


@given(units=st.integers(0, 10**13), multiplier=st.integers(5_000, 30_000))
def test_scale_matches_exact_half_up(units: int, multiplier: int) -> None:
    exact = Decimal(units) * multiplier / 10_000
    assert engine.scale(units, multiplier) == int(exact.to_integral_value("ROUND_HALF_UP"))


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        ([], 0),
        ([700_000], 700_000),
        ([500_000, 900_000], 500_000),  # even count: the lower middle, a real listed price
        ([900_000, 500_000, 700_000], 700_000),
        ([4, 1, 3, 2], 2),
        ([5, 5, 1, 9], 5),
        ([1, 2, 3, 4, 5, 6], 3),
    ],
)
def test_base_price_is_the_low_median(prices: list[int], expected: int) -> None:
    assert engine.base_price_units(prices) == expected
