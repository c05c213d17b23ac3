"""Shortcuts for the booking, order and billing tests; the reference arithmetic is in
``tests.support.money``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.support.api import Api
from tests.support.market import Market


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value} has no time zone"
    return parsed


def book(
    api: Api,
    key: str | None,
    gpu_id: str,
    hours: Any = 1,
    *,
    headers: dict[str, str] | None = None,
    **body: Any,
) -> Any:
    payload = {"gpu_id": gpu_id, "duration_hours": hours} | body
    return api.call(
        "POST", f"/v1/marketplace/gpu/{gpu_id}/book", key, json=payload, headers=headers
    )


def queued_job(api: Api, key: str) -> str:
    """A job of the key's client that waits in the queue (no GPU matches it), for bookings
    that name a job."""
    body = {"payload": {}, "ttl_seconds": 900, "constraints": {"gpu": "no such model"}}
    response = api.call("POST", "/v1/jobs", key, json=body)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def booked(api: Api, key: str, gpu_id: str, hours: Any = 1, **body: Any) -> dict[str, Any]:
    response = book(api, key, gpu_id, hours, **body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def release_gpu(api: Api, key: str | None, gpu_id: str, **kwargs: Any) -> Any:
    return api.call("POST", f"/v1/marketplace/gpu/{gpu_id}/release", key, **kwargs)


def release_booking(api: Api, key: str | None, booking_id: str, **kwargs: Any) -> Any:
    return api.call("POST", f"/v1/bookings/{booking_id}/release", key, **kwargs)


def extend(api: Api, key: str | None, booking_id: str, hours: Any, **kwargs: Any) -> Any:
    return api.call(
        "POST", f"/v1/bookings/{booking_id}/extend", key, json={"hours": hours}, **kwargs
    )


def account(api: Api, key: str) -> dict[str, Any]:
    response = api.call("GET", "/v1/accounts/me", key)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def figures(api: Api, key: str) -> tuple[str, str]:
    """(balance, escrow) as shown to the key's owner."""
    body = account(api, key)
    return body["balance"], body["escrow"]


def ledger_lines(api: Api, key: str, **params: Any) -> list[dict[str, Any]]:
    response = api.call("GET", "/v1/accounts/me/ledger", key, params=params)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    assert isinstance(body, list)
    return body


def get_booking(api: Api, key: str, booking_id: str) -> dict[str, Any]:
    response = api.call("GET", f"/v1/bookings/{booking_id}", key)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get_order(api: Api, key: str, order_id: str) -> dict[str, Any]:
    response = api.call("GET", f"/v1/marketplace/orders/{order_id}", key)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def orders(api: Api, key: str, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("limit", 500)
    response = api.call("GET", "/v1/marketplace/orders", key, params=params)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    assert isinstance(body, list), body
    return body


@dataclass(frozen=True)
class Trio:
    """A one-GPU market: its miner's key, two clients' keys and the GPU."""

    miner: str
    client: str
    other: str
    gpu: str


STATUSES = ("pending", "active", "completed", "released", "cancelled", "interrupted", "preempted")


def views(api: Api, key: str, booking: dict[str, Any]) -> tuple[Any, ...]:
    """What the client reads of a booking: the booking, its order, and which status filters
    list the order."""
    listed = {
        status: [o["order_id"] for o in orders(api, key, status=status)] for status in STATUSES
    }
    return (
        get_booking(api, key, booking["booking_id"]),
        get_order(api, key, booking["order_id"]),
        listed,
    )


def market(api: Api, price: str = "3.6", funds: str = "100") -> Trio:
    """A miner m1 with one GPU at ``price`` and two clients c1 and c2, each with ``funds``."""
    shop = Market(api, miner_id="m1")
    gpu_id = shop.gpu(price_per_hour=price)
    client, other = shop.client("c1", funds), shop.client("c2", funds)
    return Trio(miner=shop.miner_key, client=client, other=other, gpu=gpu_id)
