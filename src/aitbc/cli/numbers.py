"""Option types for numbers that refuse what the server could never accept (NaN, infinity,
out-of-range values) with a usage error instead of a traceback or a pointless request."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

import click


def _bounds_text(low: float | None, high: float | None, low_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"greater than {low:g}" if low_open else f"at least {low:g}")
    if high is not None:
        parts.append(f"at most {high:g}")
    return " and ".join(parts)


class FiniteFloat(click.ParamType[Any, Any]):
    """A finite float within optional bounds; the value sent is a float, as before."""

    name = "number"

    def __init__(
        self, low: float | None = None, high: float | None = None, *, low_open: bool = False
    ) -> None:
        self.low, self.high, self.low_open = low, high, low_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        too_low = self.low is not None and (
            number <= self.low if self.low_open else number < self.low
        )
        too_high = self.high is not None and number > self.high
        if too_low or too_high:
            self.fail(
                f"{value!r} must be {_bounds_text(self.low, self.high, self.low_open)}", param, ctx
            )
        return number


class DecimalText(click.ParamType[Any, Any]):
    """An exact decimal amount, checked here and sent as the user typed it, written out in
    plain digits (``1e-5`` as ``0.00001``: the server takes no exponents)."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            self.fail(f"{value!r} is not a decimal number", param, ctx)
        if not number.is_finite():
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return format(number, "f")


# Values the server judges (its ranges can change with its settings) are only checked to be
# finite numbers here; the bounds below are for values the CLI itself uses.
HOURS = FiniteFloat()
PRICE = FiniteFloat()
PRICE_TEXT = DecimalText()
AMOUNT = DecimalText()
