"""The unchanging part of a GPU's JSON, rendered once per revision and kept per process.

A listed GPU is its stored row (model, memory, prices, rating, health...) plus what the
clock decides (status, the current booking's end, the miner's last heartbeat). The stored
part changes only when the row does, and every UPDATE of a GPU row moves its ``revision``
(the trigger ``gpus_revision``). So a page reads ids, revisions and the clock-dependent
columns, takes each GPU's rendered card from here when its revision matches, and reads the
full rows only of the GPUs it has not seen at their current revision. The output is exactly
what rendering every row afresh would give."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from aitbc.store.lru import LRU
from aitbc.store.values import iso

# The stored columns a card is made of, in the order ``render`` unpacks them.
CARD_COLUMNS = (
    "g.id, g.revision, g.miner_id, g.model, g.memory_gb, g.cuda_cores, g.compute_capability, "
    "g.cuda_version, g.region, g.effective_price_units, g.price_units, g.pricing_mode, "
    "g.ai_models, g.description, g.rating_sum, g.review_count, g.total_bookings, "
    "g.created_at, g.health, g.health_at, g.uptime_24h_bp, g.uptime_7d_bp, g.interruptible, "
    "g.min_bid_units"
)
MAX_CARDS = 50_000


def rating_text(rating_sum: int, review_count: int) -> str | None:
    """The mean rating with two decimals, rounded half up; None without reviews."""
    if review_count == 0:
        return None
    hundredths = (rating_sum * 200 + review_count) // (2 * review_count)
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def percent_text(basis_points: int) -> str:
    """Basis points as a percentage with two decimals: 9950 -> "99.50"."""
    return f"{basis_points // 100}.{basis_points % 100:02d}"


def _json(value: Any) -> Any:
    """A JSON column as stored text (embedded as it is) or as an already parsed value."""
    return orjson.Fragment(value) if isinstance(value, str) else value


def render(row: Sequence[Any]) -> tuple[str, int, bytes]:
    """(gpu id, revision, the card: the GPU's JSON object without its closing brace)."""
    (gpu_id, revision, miner_id, model, memory_gb, cuda_cores, compute_capability,
     cuda_version, region, price, own_price, pricing_mode, ai_models, description,
     rating_sum, review_count, total_bookings, created_at, health, health_at,
     uptime_24h_bp, uptime_7d_bp, interruptible,
     min_bid) = row  # fmt: skip
    card = orjson.dumps(
        {
            "gpu_id": gpu_id,
            "miner_id": miner_id,
            "model": model,
            "memory_gb": memory_gb,
            "cuda_cores": cuda_cores,
            "compute_capability": compute_capability,
            "cuda_version": cuda_version,
            "region": region,
            "price_per_hour": f"{price // 1_000_000}.{price % 1_000_000:06d}",
            "base_price_per_hour": f"{own_price // 1_000_000}.{own_price % 1_000_000:06d}",
            "pricing_mode": pricing_mode,
            "interruptible": bool(interruptible),
            "min_bid_per_hour": None
            if min_bid is None
            else f"{min_bid // 1_000_000}.{min_bid % 1_000_000:06d}",
            "ai_models": _json(ai_models),
            "description": description,
            "average_rating": rating_text(rating_sum, review_count),
            "review_count": review_count,
            "total_bookings": total_bookings,
            "created_at": iso(created_at),
            "health": _json(health),
            "health_at": iso(health_at),
            "uptime_24h_pct": percent_text(uptime_24h_bp),
            "uptime_7d_pct": percent_text(uptime_7d_bp),
        }
    )
    return gpu_id, revision, card[:-1]


def _time(value: str | datetime | None) -> str:
    """A time as a JSON value: SQLite's stored text converted inline, anything else through
    store.values.iso."""
    if value is None:
        return "null"
    if value.__class__ is str:
        text: str = value
        if text.endswith("000000"):
            return f'"{text[:10]}T{text[11:19]}Z"'
        return f'"{text[:10]}T{text[11:26]}Z"'
    return f'"{iso(value)}"'


# Rendered tails by what they show. A miner's last heartbeat, and a booking's end, recur on
# every page that shows them until they change, so most rows find their tail here; building
# it (three times formatted, a string encoded) costs more than the lookup. Bounded by
# clearing.
_TAILS: LRU[tuple[str, object, object, object], bytes] = LRU(8192)


def finish(
    card: bytes,
    delisted: object,
    offline: object,
    booking_expires: str | datetime | None,
    last_heartbeat: str | datetime,
    next_reservation: str | datetime | None,
    /,
) -> bytes:
    """The card with what the clock decides: status (from the delisting, the miner being
    offline and a booking covering now), the current booking's end, the miner's last
    heartbeat, when the next reservation begins."""
    if delisted is not None:
        status = "delisted"
    elif offline:
        status = "offline"
    else:
        status = "available" if booking_expires is None else "booked"
    key = (status, booking_expires, last_heartbeat, next_reservation)
    tail = _TAILS.get(key)
    if tail is None:
        tail = _TAILS[key] = (
            f',"status":"{status}","booking_expires":{_time(booking_expires)},'
            f'"last_heartbeat":{_time(last_heartbeat)},'
            f'"next_reservation_at":{_time(next_reservation)}}}'
        ).encode()
    return card + tail


class Cards:
    """Rendered cards by GPU id, each valid for one revision; bounded, oldest dropped."""

    def __init__(self, max_cards: int = MAX_CARDS) -> None:
        self._cards: dict[str, tuple[int, bytes]] = {}
        self._max = max_cards

    def get(self, gpu_id: str, revision: int) -> bytes | None:
        found = self._cards.get(gpu_id)
        return found[1] if found is not None and found[0] == revision else None

    def put(self, gpu_id: str, revision: int, card: bytes) -> None:
        if gpu_id not in self._cards and len(self._cards) >= self._max:
            del self._cards[next(iter(self._cards))]
        self._cards[gpu_id] = (revision, card)
