"""Shortcuts and reference arithmetic for the booking, order and billing tests (imported as
``bookings.booking_support``).

The arithmetic here is written from the specification, independently of ``aitbc.kit.money``:
amounts are integer micro-units; cost = price_per_hour * seconds / 3600 rounded half up;
an early release charges the used whole seconds (a started second counts) pro rata of the
total, rounded half up; the platform fee is floor(charged * bps / 10000)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from conftest import ADMIN_KEY, Api

UNITS = 1_000_000


def units(amount: str | Decimal | int) -> int:
    value = Decimal(amount) * UNITS
    assert value == value.to_integral_value(), f"{amount} has more than six decimals"
    return int(value)


def money(amount_units: int) -> str:
    """Micro-units rendered the way the API renders money: six decimals, as a string."""
    return str((Decimal(amount_units) / UNITS).quantize(Decimal("0.000001")))


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
    charged = total if used >= booked_seconds else half_up(total * used, booked_seconds)
    return Split(charged=charged, refund=total - charged, fee=charged * fee_bps // 10_000)


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value} has no time zone"
    return parsed


def refused(response: Any, status: int, code: str) -> dict[str, str]:
    """An error response ``{"error", "detail"}`` with this status and machine code."""
    assert response.status_code == status, (status, code, response.text)
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error", "detail"}, body
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


def deposit(api: Api, owner_id: str, amount: str, **kwargs: Any) -> Any:
    response = api.call(
        "POST",
        f"/v1/admin/accounts/{owner_id}/deposit",
        ADMIN_KEY,
        json={"amount": amount},
        params={"create": "true"},
        **kwargs,
    )
    assert response.status_code == 201, response.text
    return response.json()


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


def gpu(api: Api, gpu_id: str) -> dict[str, Any]:
    response = api.call("GET", f"/v1/marketplace/gpu/{gpu_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
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


def heartbeat(api: Api, miner_key: str) -> None:
    response = api.call("POST", "/v1/miners/heartbeat", miner_key, json={})
    assert response.status_code == 200, response.text


def advance(api: Api, seconds: float, *miner_keys: str) -> None:
    """Move the clock on while the given miners stay online: they heartbeat every minute on
    the way (a longer silence is an outage, which stops their bookings' clocks) and at the
    end."""
    left = seconds
    while left > 60:
        api.clock.advance(seconds=60)
        left -= 60
        for key in miner_keys:
            heartbeat(api, key)
    api.clock.advance(seconds=left)
    for key in miner_keys:
        heartbeat(api, key)


@dataclass(frozen=True)
class Market:
    miner: str
    client: str
    other: str
    gpu: str


def market(api: Api, price: str = "3.6", funds: str = "100") -> Market:
    """A miner with one GPU at ``price`` and two clients c1 and c2, each with ``funds``."""
    miner = api.key("miner", "m1")
    client = api.key("client", "c1")
    other = api.key("client", "c2")
    gpu_id = api.register_gpu(miner, price_per_hour=price)
    for owner in ("c1", "c2"):
        deposit(api, owner, funds)
    return Market(miner=miner, client=client, other=other, gpu=gpu_id)
