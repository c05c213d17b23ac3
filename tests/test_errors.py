"""One error shape everywhere, and bad input is a 4xx that changes nothing, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import GPU_LIST, GPU_REGISTER, gpu_path, state
from tests.support.responses import assert_error

MAX_BODY = 64 * 1024


@pytest.fixture
def miner(api: Api) -> str:
    key = api.key("miner", "m-1")
    api.register_gpu(key, name="RTX 4090", memory_gb=24, price_per_hour="0.5")
    return key


def _gpu(**fields: Any) -> dict[str, Any]:
    return {"gpu": {"name": "RTX 4090", **fields}}


BAD_REGISTRATIONS = {
    "negative memory": _gpu(memory_gb=-1),
    "absurd memory": _gpu(memory_gb=10**9),
    "memory beyond 64 bits": _gpu(memory_gb=10**30),
    "negative price": _gpu(price_per_hour="-0.01"),
    "absurd price": _gpu(price_per_hour=10**12),
    "price with 7 decimals": _gpu(price_per_hour="0.1234567"),
    "price with 7 decimals as a number": _gpu(price_per_hour=0.1234567),
    "price NaN": _gpu(price_per_hour="NaN"),
    "price Infinity": _gpu(price_per_hour="Infinity"),
    "price is text": _gpu(price_per_hour="cheap"),
    "negative cuda cores": _gpu(cuda_cores=-5),
    "absurd cuda cores": _gpu(cuda_cores=10**12),
    "memory is text": _gpu(memory_gb="lots"),
    "memory is fractional": _gpu(memory_gb=24.5),
    "name is a number": {"gpu": {"name": 4090}},
    "name is empty": {"gpu": {"name": ""}},
    "name is blank": {"gpu": {"name": "   "}},
    "name too long": {"gpu": {"name": "x" * 129}},
    "name missing": {"gpu": {"memory_gb": 24}},
    "gpu missing": {},
    "gpu is a string": {"gpu": "RTX 4090"},
    "gpu is a list": {"gpu": [{"name": "RTX 4090"}]},
    "body is a list": [{"name": "RTX 4090"}],
    "body is null": None,
    "unknown field in gpu": _gpu(overclock=True),
    "unknown top-level field": {**_gpu(), "priority": 1},
    "description too long": _gpu(description="x" * 2001),
    "too many ai models": _gpu(ai_models=[f"m{i}" for i in range(65)]),
    "ai models not a list": _gpu(ai_models="llama2-7b"),
    "unknown pricing mode": _gpu(pricing_mode="auction"),
    "NUL byte in the name": _gpu(name="RTX\x004090"),
    "NUL byte in the description": _gpu(description="fast\x00"),
}


@pytest.mark.parametrize("body", list(BAD_REGISTRATIONS.values()), ids=list(BAD_REGISTRATIONS))
def test_bad_registration_is_422_and_changes_nothing(api: Api, miner: str, body: Any) -> None:
    before = state(api)

    response = api.call(
        "POST",
        GPU_REGISTER,
        miner,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )

    assert_error(response, 422, "validation_error")
    assert state(api) == before


def test_validation_errors_name_the_field(api: Api, miner: str) -> None:
    body = assert_error(api.call("POST", GPU_REGISTER, miner, json=_gpu(memory_gb=-1)), 422)

    assert "memory_gb" in body["detail"]


@pytest.mark.parametrize(
    "raw",
    [b'{"gpu": ', b"{gpu: {name: 'RTX 4090'}}", b"\xff\xfe\x00", b"", b"nul", b'{"gpu": {}}}'],
    ids=["truncated", "not json", "binary", "empty", "bare word", "trailing brace"],
)
def test_malformed_json_is_4xx_and_changes_nothing(api: Api, miner: str, raw: bytes) -> None:
    before = state(api)

    response = api.call(
        "POST", GPU_REGISTER, miner, content=raw, headers={"Content-Type": "application/json"}
    )

    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)
    assert state(api) == before


def test_non_json_content_type_is_4xx(api: Api, miner: str) -> None:
    before = state(api)

    response = api.call(
        "POST",
        GPU_REGISTER,
        miner,
        content=b'{"gpu": {"name": "RTX 4090"}}',
        headers={"Content-Type": "text/plain"},
    )

    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)
    assert state(api) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (GPU_REGISTER, {"gpu": {"name": "RTX 4090", "description": "x" * (MAX_BODY + 1)}}),
        (GPU_REGISTER, {"gpu": {"name": "RTX 4090"}, "padding": "x" * (2 * MAX_BODY)}),
        ("/v1/miners/register", {"gpus": [{"model": "x" * MAX_BODY}]}),
    ],
    ids=["long description", "padding", "miner register"],
)
def test_oversized_body_is_413_and_changes_nothing(
    api: Api, miner: str, path: str, body: Any
) -> None:
    before = state(api)

    response = api.call("POST", path, miner, json=body)

    assert_error(response, 413)
    assert state(api) == before


def test_oversized_body_without_content_length_is_413(api: Api, miner: str) -> None:
    before = state(api)
    chunk = b'{"gpu": {"name": "RTX 4090", "description": "' + b"x" * 1024

    def stream() -> Any:
        yield chunk
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}}'

    response = api.call(
        "POST", GPU_REGISTER, miner, content=stream(), headers={"Content-Type": "application/json"}
    )

    assert_error(response, 413)
    assert state(api) == before


def test_a_body_just_under_the_limit_is_read(api: Api, miner: str) -> None:
    """The limit refuses big bodies only: a valid GPU padded with whitespace to just under
    64 KiB still registers."""
    body = json.dumps(_gpu(name="RTX 3090")).encode()
    padded = body[:-1] + b" " * (MAX_BODY - len(body) - 16) + body[-1:]

    response = api.call(
        "POST", GPU_REGISTER, miner, content=padded, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 201, response.text


# --- error shape on every kind of failure ------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_gpu_is_404_gpu_not_found(api: Api, miner: str, method: str) -> None:
    kwargs: dict[str, Any] = {"json": {"description": "x"}} if method == "PATCH" else {}

    body = assert_error(
        api.call(method, gpu_path("gpu_0000000000"), miner, **kwargs), 404, "gpu_not_found"
    )

    assert "gpu_0000000000" in body["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("GET", "/nope"),
        ("POST", "/v1/marketplace/gpu/list/extra"),
        ("GET", "/v1/marketplace"),
        ("GET", "/v2/marketplace/gpu/list"),
    ],
)
def test_unknown_route_is_404_with_the_error_shape(api: Api, method: str, path: str) -> None:
    assert_error(api.call(method, path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", GPU_LIST),
        ("POST", GPU_LIST),
        ("PUT", "/v1/marketplace/gpu/gpu_x"),
        ("PATCH", "/v1/admin/api-keys"),
        ("PUT", "/v1/me"),
        ("GET", "/v1/miners/register"),
    ],
)
def test_wrong_method_is_405_with_the_error_shape(api: Api, method: str, path: str) -> None:
    assert_error(api.call(method, path, ADMIN_KEY), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/v1/marketplace/gpu/%00", None),
        ("PATCH", "/v1/marketplace/gpu/gpu%00x", None),
        ("DELETE", "/v1/marketplace/gpu/%00", None),
        ("GET", GPU_LIST, {"model": "RTX\x004090"}),
        ("GET", GPU_LIST, {"region": "eu\x00"}),
        ("DELETE", "/v1/admin/api-keys/key%00", None),
    ],
    ids=["details", "update", "delist", "model filter", "region filter", "revoke key"],
)
def test_nul_bytes_in_paths_and_queries_are_never_a_500(
    api: Api, miner: str, method: str, path: str, params: Any
) -> None:
    key = ADMIN_KEY if "api-keys" in path else miner
    kwargs: dict[str, Any] = {"params": params}
    if method == "PATCH":
        kwargs["json"] = {"description": "x"}
    before = state(api)

    response = api.call(method, path, key, **kwargs)

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error(response, response.status_code)
    else:
        assert response.json() == []
    assert state(api) == before


def test_query_errors_have_the_error_shape(api: Api) -> None:
    assert_error(api.call("GET", GPU_LIST, params={"limit": 0}), 422, "validation_error")


def test_key_creation_errors_have_the_error_shape(api: Api) -> None:
    response = api.call("POST", "/v1/admin/api-keys", ADMIN_KEY, json={"role": "god"})

    body = assert_error(response, 422, "validation_error")
    assert "role" in body["detail"]


# --- property: whatever the body, a registration is 201 or 4xx, never 500 ----------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_spec_keys = st.sampled_from(
    [
        "name",
        "memory_gb",
        "cuda_cores",
        "compute_capability",
        "price_per_hour",
        "description",
        "region",
        "cuda_version",
        "ai_models",
        "pricing_mode",
        "bogus",
    ]
)
_bodies = st.one_of(
    _values,
    st.fixed_dictionaries({"gpu": st.dictionaries(_spec_keys, _values, max_size=6)}),
    st.fixed_dictionaries(
        {"gpu": st.fixed_dictionaries({"name": st.text(max_size=40)}, optional={"x": _values})}
    ),
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies)
def test_arbitrary_registration_bodies_never_cause_a_500(api: Api, body: Any) -> None:
    miner = api.key("miner", "m-fuzz")
    before = [g["gpu_id"] for g in api.call("GET", GPU_LIST, params={"limit": 500}).json()]

    response = api.call(
        "POST",
        GPU_REGISTER,
        miner,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )

    after = [g["gpu_id"] for g in api.call("GET", GPU_LIST, params={"limit": 500}).json()]
    if response.status_code == 201:
        assert set(after) - set(before) == {response.json()["gpu_id"]}
    else:
        assert_error(response, response.status_code)
        assert 400 <= response.status_code < 500, response.text
        assert after == before
