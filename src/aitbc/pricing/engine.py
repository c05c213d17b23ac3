"""The dynamic pricing function: deterministic, integer arithmetic, no randomness.

Inputs, over the GPUs of one model that are listed and online:
  supply        how many there are,
  utilisation   the share of them booked right now (basis points, 10,000 = all),
  recent        bookings made on them in the last hour.

  pressure = utilisation + 0.1 x (recent bookings per GPU), the second term capped at 0.5
  target   = 1 + 1.5 x (pressure - 0.7), clamped to [0.5, 3.0]
  next     = target, moved at most 0.1 away from the previous multiplier

So a model whose GPUs are 70 % busy with no rush of bookings settles at 1.0; an idle model
drifts down to half its base price; a saturated one climbs, 0.1 per update at the most.
The model's current price is its base price (the median listed price) times the multiplier."""

from __future__ import annotations

from statistics import median_low

BP = 10_000
TARGET_UTILISATION_BP = 7_000
MIN_MULTIPLIER_BP = 5_000
MAX_MULTIPLIER_BP = 30_000
MAX_STEP_BP = 1_000
RUSH_PER_BOOKING_BP = 1_000
RUSH_CAP_BP = 5_000


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def utilisation_bp(busy: int, supply: int) -> int:
    return 0 if supply <= 0 else busy * BP // supply


def target_multiplier_bp(*, utilisation: int, recent_bookings: int, supply: int) -> int:
    rush = min(RUSH_CAP_BP, RUSH_PER_BOOKING_BP * recent_bookings // max(supply, 1))
    pressure = utilisation + rush
    target = BP + (pressure - TARGET_UTILISATION_BP) * 3 // 2
    return _clamp(target, MIN_MULTIPLIER_BP, MAX_MULTIPLIER_BP)


def next_multiplier_bp(previous: int, target: int) -> int:
    stepped = _clamp(target, previous - MAX_STEP_BP, previous + MAX_STEP_BP)
    return _clamp(stepped, MIN_MULTIPLIER_BP, MAX_MULTIPLIER_BP)


def scale(price_units: int, multiplier: int) -> int:
    """price x multiplier, rounded half-up to the micro-unit (its SQL twin is
    market.apply_multiplier)."""
    return (price_units * multiplier + BP // 2) // BP


def base_price_units(prices: list[int]) -> int:
    """The median listed price (the lower middle for an even count: a real listed price)."""
    return median_low(prices) if prices else 0
