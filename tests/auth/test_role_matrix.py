"""Every endpoint of the first slice against every kind of caller.

Allowed roles succeed; a known key with another role is 403 ``wrong_role``; no key (empty
or absent header) is 401 ``authentication_required`` except on public reads; an unknown or
revoked key is 401 ``invalid_api_key`` everywhere. A refused request changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import register_miner, state
from tests.support.responses import assert_error

PUBLIC = frozenset({"anonymous", "client", "miner", "admin"})


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    allowed: frozenset[str]
    success: int = 200
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


ENDPOINTS = {
    "create_key": Endpoint(
        "POST",
        "/v1/admin/api-keys",
        frozenset({"admin"}),
        201,
        {"role": "client", "owner_id": "c-new"},
    ),
    "list_keys": Endpoint("GET", "/v1/admin/api-keys", frozenset({"admin"})),
    "revoke_key": Endpoint("DELETE", "/v1/admin/api-keys/{key_id}", frozenset({"admin"})),
    "me": Endpoint("GET", "/v1/me", frozenset({"client", "miner", "admin"})),
    "miner_register": Endpoint(
        "POST",
        "/v1/miners/register",
        frozenset({"miner"}),
        body={"gpus": [{"model": "RTX 4090", "memory_gb": 24, "price_per_hour": "0.5"}]},
    ),
    "miner_heartbeat": Endpoint(
        "POST", "/v1/miners/heartbeat", frozenset({"miner"}), body={"status": "online"}
    ),
    "gpu_register": Endpoint(
        "POST",
        "/v1/marketplace/gpu/register",
        frozenset({"miner", "admin"}),
        201,
        {"gpu": {"name": "RTX 3090"}},
        (("X-Miner-ID", "m-1"),),
    ),
    "gpu_list": Endpoint("GET", "/v1/marketplace/gpu/list", PUBLIC),
    "gpu_details": Endpoint("GET", "/v1/marketplace/gpu/{gpu_id}", PUBLIC),
    "gpu_update": Endpoint(
        "PATCH",
        "/v1/marketplace/gpu/{gpu_id}",
        frozenset({"miner", "admin"}),
        body={"description": "changed"},
    ),
    "gpu_delist": Endpoint("DELETE", "/v1/marketplace/gpu/{gpu_id}", frozenset({"miner", "admin"})),
}

CALLERS = [
    "anonymous",
    "absent",
    "client",
    "miner",
    "admin",
    "bootstrap_admin",
    "invalid",
    "revoked",
]


@dataclass
class World:
    keys: dict[str, str | None]
    gpu_id: str
    key_id: str


@pytest.fixture
def world(api: Api) -> World:
    miner = api.key("miner", "m-1")
    register_miner(api, miner, [{"model": "RTX 4090", "memory_gb": 24, "price_per_hour": "0.5"}])
    gpu_id = api.register_gpu(miner)
    revoked = api.call(
        "POST", "/v1/admin/api-keys", ADMIN_KEY, json={"role": "admin", "owner_id": "gone"}
    ).json()
    assert (
        api.call("DELETE", f"/v1/admin/api-keys/{revoked['key_id']}", ADMIN_KEY).status_code == 200
    )
    target = api.call(
        "POST", "/v1/admin/api-keys", ADMIN_KEY, json={"role": "client", "owner_id": "c-old"}
    ).json()
    return World(
        keys={
            "anonymous": "",
            "absent": None,
            "client": api.key("client", "c-1"),
            "miner": miner,
            "admin": api.key("admin", "ops"),
            "bootstrap_admin": ADMIN_KEY,
            "invalid": "aitbc_not-a-real-key",
            "revoked": revoked["key"],
        },
        gpu_id=gpu_id,
        key_id=target["key_id"],
    )


def _role(caller: str) -> str:
    return {"absent": "anonymous", "bootstrap_admin": "admin"}.get(caller, caller)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_role_matrix(api: Api, world: World, name: str, caller: str) -> None:
    endpoint = ENDPOINTS[name]
    path = endpoint.path.format(gpu_id=world.gpu_id, key_id=world.key_id)
    key = world.keys[caller]
    headers = dict(endpoint.headers)
    if key is not None:
        headers["X-Api-Key"] = key
    kwargs: dict[str, Any] = {"headers": headers}
    if endpoint.body is not None:
        kwargs["json"] = endpoint.body
    before = state(api)

    response = api.client.request(endpoint.method, path, **kwargs)

    role = _role(caller)
    if caller in ("invalid", "revoked"):
        assert_error(response, 401, "invalid_api_key")
    elif role in endpoint.allowed:
        assert response.status_code == endpoint.success, response.text
        return
    elif role == "anonymous":
        assert_error(response, 401, "authentication_required")
    else:
        assert_error(response, 403, "wrong_role")
    assert state(api) == before
