"""Shortcuts for reading the GPU registry."""

from __future__ import annotations

from typing import Any

from tests.support.api import ADMIN_KEY, Api

GPU_LIST = "/v1/marketplace/gpu/list"
GPU_REGISTER = "/v1/marketplace/gpu/register"


def gpu_path(gpu_id: str) -> str:
    return f"/v1/marketplace/gpu/{gpu_id}"


def list_gpus(api: Api, key: str | None = None, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("limit", 500)
    response = api.call("GET", GPU_LIST, key, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list), body
    return body


def listed_ids(api: Api, **params: Any) -> list[str]:
    return [g["gpu_id"] for g in list_gpus(api, **params)]


def details(api: Api, gpu_id: str) -> dict[str, Any]:
    response = api.call("GET", gpu_path(gpu_id))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def state(api: Api) -> dict[str, Any]:
    """Everything the registry lets a caller observe: listed and delisted GPUs (with prices,
    health and heartbeats) and the API keys. Compared before and after a refused request."""
    keys = api.call("GET", "/v1/admin/api-keys", ADMIN_KEY, params={"limit": 500})
    assert keys.status_code == 200, keys.text
    return {
        "gpus": list_gpus(api, sort="newest"),
        "delisted": list_gpus(api, status="delisted", sort="newest"),
        "keys": keys.json(),
    }


def register_miner(api: Api, miner_key: str, gpus: list[dict[str, Any]], **extra: Any) -> Any:
    response = api.call("POST", "/v1/miners/register", miner_key, json={"gpus": gpus, **extra})
    assert response.status_code == 200, response.text
    return response.json()
