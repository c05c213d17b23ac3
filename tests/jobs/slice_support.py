"""Shortcuts and expected field sets for the offers, stats, bids and jobs tests; the reference
arithmetic is in ``tests.support.money`` (the default platform fee is zero)."""

from __future__ import annotations

from typing import Any

from tests.support.api import ADMIN_KEY, Api
from tests.support.responses import ok

OFFERS = "/v1/marketplace/offers"
MINER_OFFERS = "/v1/marketplace/miner-offers"
STATS = "/v1/marketplace/stats"
SYNC = "/v1/marketplace/sync-offers"
BIDS = "/v1/marketplace/bids"
JOBS = "/v1/jobs"
POLL = "/v1/miners/poll"

OFFER_FIELDS = {
    "id",
    "provider",
    "capacity",
    "price",
    "sla",
    "status",
    "gpu_id",
    "gpu_model",
    "gpu_memory",
    "gpu_status",
    "booking_expires",
    "total_bookings",
    "average_rating",
    "attributes",
    "created_at",
    "updated_at",
}
BID_FIELDS = {
    "id",
    "client_id",
    "provider",
    "gpu_model",
    "capacity",
    "filled",
    "price",
    "duration_hours",
    "notes",
    "status",
    "booking_ids",
    "created_at",
    "expires_at",
    "closed_at",
}
JOB_FIELDS = {
    "job_id",
    "state",
    "type",
    "assigned_miner_id",
    "cost",
    "metrics",
    "requested_at",
    "client_id",
    "constraints",
    "duration_hours",
    "gpu_id",
    "miner_id",
    "booking_id",
    "result",
    "error",
    "created_at",
    "expires_at",
    "assigned_at",
    "started_at",
    "finished_at",
    "rental_type",
    "bid_per_hour",
}
MINER_JOB_FIELDS = {
    "job_id",
    "gpu_id",
    "booking_id",
    "payload",
    "constraints",
    "duration_hours",
    "expires_at",
    "booking_ends_at",
    "claim_expires_at",
}


# --- requests ------------------------------------------------------------------------------


def account(api: Api, key: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(api.call("GET", "/v1/accounts/me", key))
    return body


def balance(api: Api, key: str) -> tuple[str, str]:
    """(balance, escrow) as shown to the key's owner."""
    body = account(api, key)
    return body["balance"], body["escrow"]


def sweep(api: Api) -> None:
    """One sweep: settle bookings, expire and assign jobs, fill bids, recompute prices."""
    api.client.app.state.sweeper.run_once()  # type: ignore[attr-defined]


def set_price(api: Api, miner_key: str, gpu_id: str, price: str) -> None:
    response = api.call(
        "PATCH", f"/v1/marketplace/gpu/{gpu_id}", miner_key, json={"price_per_hour": price}
    )
    assert response.status_code == 200, response.text


def delist(api: Api, miner_key: str, gpu_id: str) -> None:
    response = api.call("DELETE", f"/v1/marketplace/gpu/{gpu_id}", miner_key)
    assert response.status_code == 200, response.text


def bookings(api: Api, key: str) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = ok(api.call("GET", "/v1/bookings", key, params={"limit": 500}))
    assert isinstance(body, list), body
    return body


def booking(api: Api, key: str, booking_id: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(api.call("GET", f"/v1/bookings/{booking_id}", key))
    return body


def orders(api: Api, key: str, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("limit", 500)
    body: list[dict[str, Any]] = ok(api.call("GET", "/v1/marketplace/orders", key, params=params))
    assert isinstance(body, list), body
    return body


# --- offers, stats, bids -------------------------------------------------------------------


def sync(api: Api, path: str = SYNC) -> dict[str, int]:
    body: dict[str, int] = ok(api.call("POST", path, ADMIN_KEY))
    return body


def offers(api: Api, path: str = OFFERS, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("limit", 500)
    body: list[dict[str, Any]] = ok(api.call("GET", path, params=params))
    assert isinstance(body, list), body
    return body


def offer_of(api: Api, gpu_id: str) -> dict[str, Any]:
    [found] = [o for o in offers(api) if o["gpu_id"] == gpu_id]
    return found


def stats(api: Api, path: str = STATS) -> dict[str, Any]:
    body: dict[str, Any] = ok(api.call("GET", path))
    return body


def place_bid(api: Api, client_key: str, **body: Any) -> Any:
    return api.call("POST", BIDS, client_key, json=body)


def bid(api: Api, client_key: str, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = ok(place_bid(api, client_key, **body), 202)
    return result


def my_bids(api: Api, key: str) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = ok(api.call("GET", BIDS, key, params={"limit": 500}))
    assert isinstance(body, list), body
    return body


def bid_of(api: Api, key: str, bid_id: str) -> dict[str, Any]:
    [found] = [b for b in my_bids(api, key) if b["id"] == bid_id]
    return found


def cancel_bid(api: Api, key: str | None, bid_id: str) -> Any:
    return api.call("POST", f"{BIDS}/{bid_id}/cancel", key)


# --- jobs ----------------------------------------------------------------------------------


def submit(api: Api, client_key: str, **body: Any) -> Any:
    body.setdefault("duration_hours", 1)
    return api.call("POST", JOBS, client_key, json=body)


def submitted(api: Api, client_key: str, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = ok(submit(api, client_key, **body), 201)
    return result


def job(api: Api, key: str, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(api.call("GET", f"{JOBS}/{job_id}", key))
    return body


def jobs(api: Api, key: str) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = ok(api.call("GET", JOBS, key, params={"limit": 500}))
    assert isinstance(body, list), body
    return body


def poll(api: Api, miner_key: str) -> Any:
    return api.call("POST", POLL, miner_key)


def polled(api: Api, miner_key: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(poll(api, miner_key))
    return body


def report_result(api: Api, miner_key: str, job_id: str, result: Any = None) -> Any:
    body = {"result": result if result is not None else {"ok": True}}
    return api.call("POST", f"/v1/miners/jobs/{job_id}/result", miner_key, json=body)


def report_failure(api: Api, miner_key: str, job_id: str, error: str = "CUDA out of memory") -> Any:
    return api.call("POST", f"/v1/miners/jobs/{job_id}/fail", miner_key, json={"error": error})


def cancel_job(api: Api, key: str | None, job_id: str) -> Any:
    return api.call("POST", f"{JOBS}/{job_id}/cancel", key)
