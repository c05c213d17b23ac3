"""Durations in hours, as clients send them (a decimal with up to six places) and as the
service counts them (whole seconds)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import Field

from aitbc.errors import Invalid
from aitbc.kit.schema_notes import HOURS_TEXT

HoursIn = Annotated[Decimal, Field(gt=0, le=100_000, max_digits=12, decimal_places=6), HOURS_TEXT]


def seconds_from_hours(hours: Decimal, max_hours: Decimal) -> int:
    if hours > max_hours:
        raise Invalid(f"A booking lasts at most {max_hours:f} hours.", code="duration_too_long")
    seconds = int((hours * 3600).to_integral_value(rounding=ROUND_HALF_UP))
    if seconds < 1:
        raise Invalid("A booking lasts at least one second.", code="duration_too_short")
    return seconds
