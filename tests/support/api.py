"""The in-process test client with the shortcuts every test needs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from aitbc.config import Settings
from aitbc.kit.clock import ManualClock

ADMIN_KEY = "test-admin-key-0123456789abcdef0123456789"
PG_URL = os.environ.get("AITBC_TEST_DATABASE_URL", "")


def settings_for(database_url: str, **changed: Any) -> Settings:
    """The settings every test's app runs with, with ``changed`` ones of a test's own."""
    common: dict[str, Any] = {
        "database_url": database_url,
        "admin_key": ADMIN_KEY,
        "sweep_interval_seconds": 0,
        "environment": "test",
        # The billing arithmetic is tested down to a micro-unit per hour; the default
        # minimum (0.01) has its own test (tests/gpus/test_minimum_price.py).
        "min_price_per_hour": Decimal("0.000001"),
    }
    return Settings(**(common | changed))


@dataclass
class Api:
    """A TestClient on the app under test and the clock it runs on."""

    client: TestClient
    clock: ManualClock

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}) or {})
        headers.setdefault("X-Api-Key", key or "")
        return self.client.request(method, path, headers=headers, **kwargs)

    def key(self, role: str, owner_id: str) -> str:
        response = self.call(
            "POST", "/v1/admin/api-keys", ADMIN_KEY, json={"role": role, "owner_id": owner_id}
        )
        assert response.status_code == 201, response.text
        secret: str = response.json()["key"]
        return secret

    def pass_time(self, seconds: float, *miner_keys: str) -> None:
        """Move the clock on while the given miners stay online: each heartbeats after every
        minute on the way (a longer silence is an outage, which stops their bookings' clocks)
        and at the end."""
        left = seconds
        while True:
            step = min(60.0, left)
            self.clock.advance(seconds=step)
            left -= step
            for key in miner_keys:
                beat = self.call("POST", "/v1/miners/heartbeat", key, json={})
                assert beat.status_code == 200, beat.text
            if left <= 0:
                return

    def register_gpu(self, miner_key: str, **spec: Any) -> str:
        body = {"name": "RTX 4090", "memory_gb": 24, "price_per_hour": "0.5"} | spec
        response = self.call("POST", "/v1/marketplace/gpu/register", miner_key, json={"gpu": body})
        assert response.status_code == 201, response.text
        gpu_id: str = response.json()["gpu_id"]
        return gpu_id
