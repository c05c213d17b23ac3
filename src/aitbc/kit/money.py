"""Money is the AITBC token with six decimal places, held as integer micro-units in the
database and as ``Decimal`` everywhere else. Amounts are rounded half-up once
(``divide_units``); a platform fee is rounded down (``fee_units``), in the provider's favour."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer

from aitbc.kit.schema_notes import MONEY_QUERY, MONEY_TEXT

SCALE = 6
UNITS_PER_TOKEN = 10**SCALE
QUANTUM = Decimal(1).scaleb(-SCALE)


def to_units(amount: Decimal) -> int:
    """Exact conversion; amounts with more than six decimals are a caller bug."""
    units = amount * UNITS_PER_TOKEN
    if units != units.to_integral_value():
        raise ValueError(f"{amount} has more than {SCALE} decimal places")
    return int(units)


def maybe_units(amount: Decimal | None) -> int | None:
    """``to_units`` of an amount that may be left out (None stays None)."""
    return None if amount is None else to_units(amount)


def from_units(units: int) -> Decimal:
    amount: Decimal = (Decimal(units) / UNITS_PER_TOKEN).quantize(QUANTUM)
    return amount


def units_text(units: int) -> str:
    """Micro-units as the API shows money: ``"0.500000"``, ``"-1.250000"``."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), UNITS_PER_TOKEN)
    return f"{sign}{whole}.{fraction:06d}"


def divide_units(numerator: int, denominator: int) -> int:
    """Integer division of micro-units rounded half up: the one rounding rule for money."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (1 if 2 * remainder >= denominator else 0)


def _render(amount: Decimal) -> str:
    return str(amount.quantize(QUANTUM))


# Request side, every bound inside the type (kit.schema_notes builds the document's pattern
# for amounts sent as text from them): an amount of zero or more, a price per hour (zero or
# more, at most a million), a positive price, a positive amount (a deposit, a payment cap).
_MONEY = {"max_digits": 18, "decimal_places": SCALE}
MoneyIn = Annotated[Decimal, Field(ge=0, **_MONEY), MONEY_TEXT]
PriceIn = Annotated[Decimal, Field(ge=0, le=1_000_000, **_MONEY), MONEY_TEXT]
PositivePriceIn = Annotated[Decimal, Field(gt=0, le=1_000_000, **_MONEY), MONEY_TEXT]
AmountIn = Annotated[Decimal, Field(gt=0, le=1_000_000_000, **_MONEY), MONEY_TEXT]
# The same in a query string, where every value is text.
MoneyQuery = Annotated[Decimal, Field(ge=0, **_MONEY), MONEY_QUERY]
PriceQuery = Annotated[Decimal, Field(ge=0, le=1_000_000, **_MONEY), MONEY_QUERY]
# Response side: always a string with exactly six decimals, never a float.
MoneyOut = Annotated[Decimal, PlainSerializer(_render, return_type=str, when_used="json")]


def fee_units(charged_units: int, fee_bps: int) -> int:
    """The platform's part of a payment, in basis points, rounded down."""
    return charged_units * fee_bps // 10_000
