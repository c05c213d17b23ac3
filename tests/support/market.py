"""The one market factory: miners with GPUs, funded clients, heartbeats. Every test that
needs a market builds it here, so a change in how keys, deposits or registration work is
made once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import gpu_path


def deposit(api: Api, owner_id: str, amount: str, **kwargs: Any) -> Any:
    """An admin deposit to ``owner_id`` (its account created if need be); the answer."""
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


def heartbeat(api: Api, miner_key: str, **body: Any) -> Any:
    response = api.call("POST", "/v1/miners/heartbeat", miner_key, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def booked(api: Api, key: str, gpu_id: str, hours: Any = 1, **body: Any) -> dict[str, Any]:
    """A booking that must succeed; its answer."""
    payload = {"gpu_id": gpu_id, "duration_hours": hours} | body
    response = api.call("POST", f"{gpu_path(gpu_id)}/book", key, json=payload)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def release(api: Api, key: str, gpu_id: str) -> dict[str, Any]:
    """Releasing the caller's booking of a GPU, which must succeed; its answer."""
    response = api.call("POST", f"{gpu_path(gpu_id)}/release", key)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def review(api: Api, key: str, gpu_id: str, rating: int, comment: str | None = None) -> Any:
    """A review that must be accepted; its answer."""
    body = {"rating": rating, "comment": comment}
    response = api.call("POST", f"{gpu_path(gpu_id)}/reviews", key, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def advance(api: Api, seconds: float, *miner_keys: str) -> None:
    """Move the clock on while the given miners stay online (see ``Api.pass_time``)."""
    api.pass_time(seconds, *miner_keys)


@dataclass
class Market:
    """One miner (more with ``miner``), its GPUs, and funded clients made on first use."""

    api: Api
    miner_id: str = "m-1"
    miner_key: str = ""
    clients: dict[str, str] = field(default_factory=dict)
    miners: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.miner_key:
            self.miner_key = self.miner(self.miner_id)

    def miner(self, owner_id: str) -> str:
        """A miner key (one per owner, created on first use)."""
        if owner_id not in self.miners:
            self.miners[owner_id] = self.api.key("miner", owner_id)
        return self.miners[owner_id]

    def gpu(self, **spec: Any) -> str:
        """A GPU of the first miner, registered one at a time."""
        return self.api.register_gpu(self.miner_key, **spec)

    def client(self, owner_id: str, amount: str = "1000") -> str:
        """A client key holding ``amount`` (one per owner, created and funded on first use)."""
        if owner_id not in self.clients:
            self.clients[owner_id] = self.api.key("client", owner_id)
            deposit(self.api, owner_id, amount)
        return self.clients[owner_id]

    def beat(self, **body: Any) -> Any:
        return heartbeat(self.api, self.miner_key, **body)

    def book(self, owner_id: str, gpu_id: str, hours: str = "1", **extra: Any) -> Any:
        """``owner_id`` books ``gpu_id`` (the miner heartbeats first, so the GPU is online)."""
        self.beat()
        return booked(self.api, self.client(owner_id), gpu_id, hours, **extra)

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
