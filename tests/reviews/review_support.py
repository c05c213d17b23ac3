"""Shortcuts for the review, pricing and related CLI / concurrency tests (imported as
``reviews.review_support``; the tests directory is on ``sys.path`` because ``conftest.py``
lives there).

A review needs a *started* booking, and a GPU is only bookable while its miner's heartbeat is
fresh (90 s by default), so the helpers here heartbeat before every booking and move the
clock instead of sleeping."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from conftest import ADMIN_KEY, Api
from fastapi import FastAPI
from sqlalchemy import text

GPU = "/v1/marketplace/gpu"


def gpu_path(gpu_id: str) -> str:
    return f"{GPU}/{gpu_id}"


def reviews_path(gpu_id: str) -> str:
    return f"{GPU}/{gpu_id}/reviews"


def refused(response: Any, status: int, code: str | None = None) -> dict[str, str]:
    """An error response ``{"error", "detail"}`` with this status (and machine code)."""
    assert response.status_code == status, (status, code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error", "detail"}, body
    assert isinstance(body["detail"], str) and body["detail"], body
    if code is not None:
        assert body["error"] == code, body
    return body


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def dec(value: Any) -> Decimal | None:
    """A decimal from the wire (a string such as "4.50"), None for null."""
    return None if value is None else Decimal(str(value))


def when(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def fund(api: Api, owner_id: str, amount: str = "1000") -> None:
    response = api.call(
        "POST",
        f"/v1/admin/accounts/{owner_id}/deposit",
        ADMIN_KEY,
        json={"amount": amount},
        params={"create": "true"},
    )
    assert response.status_code == 201, response.text


def heartbeat(api: Api, miner_key: str) -> None:
    response = api.call("POST", "/v1/miners/heartbeat", miner_key, json={})
    assert response.status_code == 200, response.text


def book(api: Api, client_key: str, gpu_id: str, hours: str = "1", **extra: Any) -> Any:
    response = api.call(
        "POST",
        f"{GPU}/{gpu_id}/book",
        client_key,
        json={"gpu_id": gpu_id, "duration_hours": hours, **extra},
    )
    assert response.status_code == 201, response.text
    return response.json()


def release(api: Api, client_key: str, gpu_id: str) -> Any:
    response = api.call("POST", f"{GPU}/{gpu_id}/release", client_key)
    assert response.status_code == 200, response.text
    return response.json()


def details(api: Api, gpu_id: str) -> dict[str, Any]:
    response = api.call("GET", gpu_path(gpu_id))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def post_review(
    api: Api, key: str, gpu_id: str, rating: Any, comment: Any = None, **extra: Any
) -> Any:
    return api.call(
        "POST", reviews_path(gpu_id), key, json={"rating": rating, "comment": comment, **extra}
    )


def review(api: Api, key: str, gpu_id: str, rating: int, comment: str | None = None) -> Any:
    response = post_review(api, key, gpu_id, rating, comment)
    assert response.status_code == 201, response.text
    return response.json()


def public_reviews(api: Api, gpu_id: str, **params: Any) -> Any:
    response = api.call("GET", reviews_path(gpu_id), params=params)
    assert response.status_code == 200, response.text
    return response.json()


@dataclass
class Market:
    """One miner's GPUs and the clients that have used them."""

    api: Api
    miner_id: str = "m-1"
    miner_key: str = ""
    clients: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.miner_key:
            self.miner_key = self.api.key("miner", self.miner_id)

    def gpu(self, **spec: Any) -> str:
        return self.api.register_gpu(self.miner_key, **spec)

    def client(self, owner_id: str, amount: str = "1000") -> str:
        """A funded client key (one per owner, created on first use)."""
        if owner_id not in self.clients:
            self.clients[owner_id] = self.api.key("client", owner_id)
            fund(self.api, owner_id, amount)
        return self.clients[owner_id]

    def beat(self) -> None:
        heartbeat(self.api, self.miner_key)

    def book(self, owner_id: str, gpu_id: str, hours: str = "1", **extra: Any) -> Any:
        self.beat()
        return book(self.api, self.client(owner_id), gpu_id, hours, **extra)

    def used(self, owner_id: str, gpu_id: str, seconds: float = 60) -> str:
        """``owner_id`` books ``gpu_id`` now, uses it for ``seconds`` and releases it: a
        booking that started (so the client may review). Returns the client's key."""
        key = self.client(owner_id)
        self.book(owner_id, gpu_id)
        self.api.clock.advance(seconds=seconds)
        assert release(self.api, key, gpu_id)["status"] == "released"
        return key

    def reviewed(
        self, owner_id: str, gpu_id: str, rating: int, comment: str | None = None
    ) -> dict[str, Any]:
        key = self.used(owner_id, gpu_id)
        body: dict[str, Any] = review(self.api, key, gpu_id, rating, comment)
        return body


def stored_aggregates(app: FastAPI, gpu_id: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(the GPU's rating_sum and review_count, the same recomputed from its visible reviews)."""
    with app.state.db.engine.connect() as conn:
        kept = conn.execute(
            text("SELECT rating_sum, review_count FROM gpus WHERE id = :g"), {"g": gpu_id}
        ).one()
        recount = conn.execute(
            text(
                "SELECT COALESCE(SUM(rating), 0), COUNT(*) FROM reviews "
                "WHERE gpu_id = :g AND hidden_at IS NULL"
            ),
            {"g": gpu_id},
        ).one()
    return (int(kept[0]), int(kept[1])), (int(recount[0]), int(recount[1]))


def average(ratings: list[int]) -> Decimal | None:
    """The mean of the ratings to two decimals, half up (None when there are none)."""
    if not ratings:
        return None
    return (Decimal(sum(ratings)) / len(ratings)).quantize(Decimal("0.01"), "ROUND_HALF_UP")
