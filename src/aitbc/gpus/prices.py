"""The rule every GPU's own price meets, wherever it is set (registration, a miner's
capabilities, a price change)."""

from __future__ import annotations

from decimal import Decimal

from aitbc.config import Settings
from aitbc.errors import Invalid


def check_price(price: Decimal, settings: Settings) -> Decimal:
    """The price, refused below ``AITBC_MIN_PRICE_PER_HOUR`` (a booking is never free)."""
    if price < settings.min_price_per_hour:
        raise Invalid(
            f"The price per hour must be at least {settings.min_price_per_hour:f}; "
            f"{price:f} is below it.",
            code="price_below_minimum",
        )
    return price
