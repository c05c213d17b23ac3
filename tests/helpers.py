"""Assertions and look-ups shared by the API and CLI tests (imported as ``helpers``; the
tests directory is on ``sys.path`` because ``conftest.py`` lives there)."""

from __future__ import annotations

from typing import Any

from conftest import ADMIN_KEY, Api

GPU_LIST = "/v1/marketplace/gpu/list"
GPU_REGISTER = "/v1/marketplace/gpu/register"


def gpu_path(gpu_id: str) -> str:
    return f"/v1/marketplace/gpu/{gpu_id}"


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, str]:
    """The response is an error with exactly ``{"error", "detail"}`` and the given status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    if code is not None:
        assert body["error"] == code, body
    return body


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
    """Everything this slice lets a caller observe: listed and delisted GPUs (with prices,
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


def heartbeat(api: Api, miner_key: str, **body: Any) -> Any:
    response = api.call("POST", "/v1/miners/heartbeat", miner_key, json=body)
    assert response.status_code == 200, response.text
    return response.json()
