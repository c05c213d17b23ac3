"""The money functions against the reference arithmetic, without HTTP or a database: the
one rounding rule (half up), the fee (rounded down), and how amounts are written."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aitbc.kit.money import divide_units, fee_units, from_units, to_units, units_text
from tests.support import money as ref

amounts = st.integers(min_value=0, max_value=10**15)


@given(numerator=amounts, denominator=st.integers(min_value=1, max_value=10**9))
def test_division_rounds_half_up(numerator: int, denominator: int) -> None:
    assert divide_units(numerator, denominator) == ref.half_up(numerator, denominator)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 10, 1), (4, 10, 0), (15, 10, 2), (25, 10, 3), (1, 3, 0), (2, 3, 1), (0, 7, 0)],
)
def test_division_at_the_halves(numerator: int, denominator: int, expected: int) -> None:
    assert divide_units(numerator, denominator) == expected


def test_division_by_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        divide_units(1, 0)


@given(charged=amounts, bps=st.integers(min_value=0, max_value=10_000))
def test_the_fee_rounds_down_and_never_exceeds_the_charge(charged: int, bps: int) -> None:
    fee = fee_units(charged, bps)
    assert fee == ref.split(charged, 1, 1, bps).fee
    assert 0 <= fee <= charged


@given(units=st.integers(min_value=-(10**15), max_value=10**15))
def test_amounts_are_written_with_six_decimals(units: int) -> None:
    text = units_text(units)
    assert text == (ref.money(units) if units >= 0 else "-" + ref.money(-units))
    assert to_units(Decimal(text)) == units
    assert str(from_units(units)) == text


def test_more_than_six_decimals_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        to_units(Decimal("0.0000001"))
