"""What a table shows for each kind of result: the few columns that fit a terminal, the field
that identifies a row (for ``--quiet``) and the lists nested in a single result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class View:
    id_key: str
    columns: tuple[str, ...] = ()
    rows_key: str | None = None  # a wrapper object whose rows are under this key
    nested: dict[str, View] = field(default_factory=dict)


# Each view's columns in priority order: a narrow terminal leaves out the last ones first.
GPU = View(
    "gpu_id",
    ("gpu_id", "model", "price_per_hour", "status", "memory_gb", "region", "average_rating"),
)


def gpu_by(figures: Sequence[str]) -> View:
    """The GPU list sorted or filtered by market figures (the lowest winning bid, the last
    clearing price): each figure's column after the model."""
    if not figures:
        return GPU
    rest = ("price_per_hour", "status", "memory_gb", "region")
    return View("gpu_id", ("gpu_id", "model", *figures, *rest))


GPU_REGISTERED = View("gpu_id")
BOOKING = View(
    "booking_id",
    (
        "booking_id",
        "gpu_id",
        "status",
        "start_time",
        "end_time",
        "total_cost",
        "rental_type",
        "price_per_hour",
    ),
)
GANG = View("gang_id", nested={"lines": BOOKING})
ORDER_EVENT = View("at", ("at", "status", "note"))
ORDER = View(
    "order_id",
    (
        "order_id",
        "gpu_id",
        "status",
        "total_cost",
        "refund",
        "start_time",
        "rental_type",
        "price_per_hour",
    ),
    nested={"history": ORDER_EVENT},
)
JOB = View(
    "job_id", ("job_id", "state", "gpu_id", "cost", "created_at", "duration_hours", "rental_type")
)
MINER_JOB = View("job_id", ("job_id", "state", "gpu_id", "created_at"))
BID = View(  # tables show the id as bid_id (cli.marketplace._bid_shown)
    "id", ("bid_id", "status", "capacity", "filled", "price", "gpu_model", "duration_hours")
)
OFFER = View(
    "id", ("id", "provider", "capacity", "price", "status", "gpu_id", "gpu_model", "gpu_memory")
)
REVIEW = View(
    "review_id", ("review_id", "rating", "comment", "reviewer_id", "verified", "created_at")
)
GPU_REVIEWS = View("review_id", rows_key="reviews", nested={"reviews": REVIEW})
REVIEW_ADMIN = View(
    "review_id",
    ("review_id", "gpu_id", "rating", "comment", "hidden", "flag_count", "flag_reasons"),
)
RATING_POINT = View(
    "period_start",
    ("period_start", "average_rating", "review_count", "new_reviews", "period_average"),
)
PRICE_POINT = View(
    "at", ("at", "current_price", "base_price", "demand_multiplier", "utilisation", "supply")
)
API_KEY = View("key_id", ("key_id", "role", "owner_id", "prefix", "created_at", "revoked_at"))
# A key as made: --quiet prints its secret, shown this once (its id would be of no use).
API_KEY_MADE = View("key", API_KEY.columns)
LEDGER = View(
    "entry_id",
    ("entry_id", "transaction_id", "kind", "account", "amount", "booking_id", "created_at"),
)
ACCOUNT = View("owner_id")
DEPOSIT = View("transaction_id")
QUOTE = View("quote_id")
CANDIDATE = View(
    "gpu_id",
    (
        "gpu_id",
        "model",
        "price_per_hour",
        "lowest_winning_bid",
        "uptime_7d_pct",
        "verdict",
        "reason",
    ),
)
CRITERION = View("criterion", ("criterion", "wanted", "gpus_left"))
EXPLANATION = View("chosen", nested={"candidates": CANDIDATE, "criteria": CRITERION})
ME = View("owner_id")
MINER = View("miner_id", nested={"gpus": View("gpu_id")})
PRICING = View("model")
ALERT = View("below")
EVENT = View("id", ("id", "at", "type", "object_id"))
EVENTS = View("id", rows_key="events", nested={"events": EVENT})
WEBHOOK = View(
    "webhook_id",
    ("webhook_id", "url", "types", "enabled", "delivered", "failures", "last_error"),
)
WEBHOOK_MADE = View("secret", WEBHOOK.columns)  # likewise: --quiet prints its secret
DELIVERY = View(
    "at", ("at", "event_id", "event_type", "attempt", "ok", "status_code", "duration_ms", "error")
)
GPU_EARNINGS = View("gpu_id", ("gpu_id", "model", "earned", "bookings_paid"))
EARNINGS = View("miner_id", rows_key="by_gpu", nested={"by_gpu": GPU_EARNINGS})
