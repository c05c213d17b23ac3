"""Reference arithmetic for amounts, written from the specification and independently of
``aitbc.kit.money``, so the two check each other.

Amounts are integer micro-units; a booking costs price_per_hour x seconds / 3600, rounded
half up; an early release charges the used whole seconds (a started second counts) pro rata
of the total, rounded half up; the platform fee is floor(charged x bps / 10000)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

UNITS = 1_000_000
MICRO = Decimal("0.000001")


def units(amount: str | Decimal | int) -> int:
    value = Decimal(amount) * UNITS
    assert value == value.to_integral_value(), f"{amount} has more than six decimals"
    return int(value)


def money(amount_units: int) -> str:
    """Micro-units written the way the API writes money: six decimals, as a string."""
    return str((Decimal(amount_units) / UNITS).quantize(MICRO))


def amount(value: Decimal | str) -> str:
    """A decimal amount written the way the API writes money."""
    return str(Decimal(value).quantize(MICRO))


def half_up(numerator: int, denominator: int) -> int:
    assert numerator >= 0 and denominator > 0
    return int((Decimal(numerator) / Decimal(denominator)).to_integral_value(ROUND_HALF_UP))


def seconds_of(hours: str | Decimal) -> int:
    return int((Decimal(hours) * 3600).to_integral_value(ROUND_HALF_UP))


def cost_units(price: str, seconds: int) -> int:
    return half_up(units(price) * seconds, 3600)


def used_seconds(elapsed_microseconds: int, booked_seconds: int) -> int:
    """Whole seconds, a started second counting, never more than booked."""
    return max(0, min(booked_seconds, -(-elapsed_microseconds // UNITS)))


@dataclass(frozen=True)
class Split:
    charged: int
    refund: int
    fee: int

    @property
    def provider(self) -> int:
        return self.charged - self.fee


def split(total: int, booked_seconds: int, used: int, fee_bps: int = 0) -> Split:
    """How a booking's ``total`` divides when ``used`` of ``booked_seconds`` were used."""
    charged = total if used >= booked_seconds else half_up(total * used, booked_seconds)
    return Split(charged=charged, refund=total - charged, fee=charged * fee_bps // 10_000)
