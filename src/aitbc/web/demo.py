"""Demo data for the web pages, made through the public API of a running coordinator (so it
obeys every rule a real client does): two providers with GPUs and health figures, clients
with money, bookings, reviews and a flagged review."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx

_MINERS: dict[str, list[dict[str, Any]]] = {
    "demo-miner-eu": [
        {
            "model": "RTX 4090",
            "memory_gb": 24,
            "price_per_hour": "0.55",
            "cuda_version": "12.4",
            "compute_capability": "8.9",
            "cuda_cores": 16384,
            "ai_models": ["llama2-7b", "sdxl"],
            "description": "Quiet workstation card, fibre uplink.",
        },
        {
            "model": "RTX 3090",
            "memory_gb": 24,
            "price_per_hour": "0.35",
            "cuda_version": "12.2",
            "ai_models": ["llama2-7b"],
        },
    ],
    "demo-miner-us": [
        {
            "model": "A100",
            "memory_gb": 80,
            "price_per_hour": "1.90",
            "cuda_version": "12.4",
            "compute_capability": "8.0",
            "ai_models": ["llama2-70b"],
            "pricing_mode": "dynamic",
        },
        {"model": "RTX 4060 Ti", "memory_gb": 16, "price_per_hour": "0.18"},
    ],
}
_REGIONS = {"demo-miner-eu": "eu-west", "demo-miner-us": "us-east"}


@dataclass(frozen=True)
class DemoKeys:
    admin: str
    client: str
    other_client: str
    miner: str
    gpu_ids: list[str]
    miners: dict[str, str]  # every demo miner's key, by its id


def keep_online(base_url: str, miners: dict[str, str], stop: threading.Event, every: float) -> None:
    """Heartbeat the demo miners every ``every`` seconds until ``stop`` is set: their GPUs
    stay online while the demo runs."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        while not stop.wait(every):
            for key in miners.values():
                http.post("/v1/miners/heartbeat", json={}, headers={"X-Api-Key": key})


class DemoError(RuntimeError):
    pass


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise DemoError(f"{response.request.method} {response.request.url.path}: {response.text}")
    return response.json()


def seed(base_url: str, admin_key: str) -> DemoKeys:
    """Fill a coordinator with demo data; returns the keys made (shown once by the API)."""
    with httpx.Client(base_url=base_url, timeout=30) as http:

        def call(method: str, path: str, key: str, body: Any = None) -> Any:
            return _check(http.request(method, path, json=body, headers={"X-Api-Key": key}))

        def key(role: str, owner: str) -> str:
            made = call("POST", "/v1/admin/api-keys", admin_key, {"role": role, "owner_id": owner})
            return str(made["key"])

        miner_keys, gpu_ids = {}, []
        for miner_id, gpus in _MINERS.items():
            miner_keys[miner_id] = key("miner", miner_id)
            body = {"gpus": gpus, "region": _REGIONS[miner_id]}
            registered = call("POST", "/v1/miners/register", miner_keys[miner_id], body)
            refs = [ref["gpu_id"] for ref in registered["gpus"]]
            gpu_ids += refs
            figures = [
                {
                    "slot": ref["slot"],
                    "utilization_pct": 35 + 20 * i,
                    "memory_used_gb": 6 + i,
                    "memory_total_gb": gpus[i]["memory_gb"],
                    "temperature_c": 58 + 4 * i,
                }
                for i, ref in enumerate(registered["gpus"])
            ]
            call("POST", "/v1/miners/heartbeat", miner_keys[miner_id], {"gpus": figures})

        client, other = key("client", "demo-alice"), key("client", "demo-bob")
        for owner in ("demo-alice", "demo-bob"):
            call("POST", f"/v1/admin/accounts/{owner}/deposit", admin_key, {"amount": "250"})
        booked = gpu_ids[0]
        call("POST", f"/v1/marketplace/gpu/{booked}/book", client, {"duration_hours": "3"})
        call("POST", f"/v1/marketplace/gpu/{gpu_ids[2]}/book", other, {"duration_hours": "1"})
        call(
            "POST",
            f"/v1/marketplace/gpu/{booked}/reviews",
            client,
            {"rating": 5, "comment": "Fast and stable all afternoon."},
        )
        spam = call(
            "POST",
            f"/v1/marketplace/gpu/{gpu_ids[2]}/reviews",
            other,
            {"rating": 1, "comment": "Buy cheap tokens at example.invalid!!!"},
        )
        call(
            "POST", f"/v1/marketplace/reviews/{spam['review_id']}/flag", client, {"reason": "spam"}
        )
        # Bob's booking ends early: his order shows a release and a refund.
        call("POST", f"/v1/marketplace/gpu/{gpu_ids[2]}/release", other)
        call("POST", "/v1/marketplace/sync-offers", admin_key)
        return DemoKeys(
            admin=admin_key,
            client=client,
            other_client=other,
            miner=miner_keys["demo-miner-eu"],
            gpu_ids=gpu_ids,
            miners=miner_keys,
        )
