"""The GPU registry's CLI contract: ``POST /v1/marketplace/gpu/register`` with ``X-Miner-ID``,
``GET /v1/marketplace/gpu/{id}``, ``PATCH`` (price, description) and ``DELETE`` (delist)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from aitbc.config import Settings
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import GPU_REGISTER, details, gpu_path, list_gpus, listed_ids, state
from tests.support.responses import assert_error

DETAIL_FIELDS = {
    "gpu_id",
    "miner_id",
    "model",
    "memory_gb",
    "cuda_version",
    "compute_capability",
    "cuda_cores",
    "region",
    "price_per_hour",
    "status",
    "ai_models",
    "description",
    "created_at",
    "last_heartbeat",
    "health",
    "average_rating",
    "review_count",
    "total_bookings",
    "booking_expires",
}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def miner(api: Api) -> str:
    return api.key("miner", "m-1")


def _register(api: Api, key: str, gpu: dict[str, Any], miner_id: str | None = None) -> Any:
    headers = {} if miner_id is None else {"X-Miner-ID": miner_id}
    return api.call("POST", GPU_REGISTER, key, json={"gpu": gpu}, headers=headers)


# --- register ---------------------------------------------------------------------------


def test_register_with_only_a_name(api: Api, miner: str, settings: Settings) -> None:
    response = _register(api, miner, {"name": "RTX 4090"}, miner_id="default")

    assert response.status_code == 201, response.text
    gpu_id = response.json()["gpu_id"]
    assert isinstance(gpu_id, str) and gpu_id
    gpu = details(api, gpu_id)
    assert gpu["model"] == "RTX 4090"
    assert gpu["miner_id"] == "m-1"
    assert gpu["memory_gb"] == 0
    assert gpu["status"] == "available"
    assert gpu["price_per_hour"] == f"{settings.default_price:.6f}"
    assert listed_ids(api) == [gpu_id]


def test_register_with_everything_the_cli_sends(api: Api, miner: str) -> None:
    spec = {
        "name": "RTX 4090",
        "memory_gb": 24,
        "cuda_cores": 16384,
        "compute_capability": "8.9",
        "price_per_hour": 0.5,
        "description": "water cooled",
    }

    gpu_id = _register(api, miner, spec, miner_id="default").json()["gpu_id"]

    gpu = details(api, gpu_id)
    assert gpu["memory_gb"] == 24
    assert gpu["cuda_cores"] == 16384
    assert gpu["compute_capability"] == "8.9"
    assert gpu["price_per_hour"] == "0.500000"
    assert gpu["description"] == "water cooled"


def test_register_accepts_fields_beyond_the_clis(api: Api, miner: str) -> None:
    spec = {
        "name": "A100",
        "memory_gb": 80,
        "region": "eu-west",
        "cuda_version": "12.2",
        "ai_models": ["llama2-7b", "Mistral 7B"],
        "price_per_hour": "2.125",
    }

    gpu = details(api, _register(api, miner, spec).json()["gpu_id"])

    assert gpu["region"] == "eu-west"
    assert gpu["cuda_version"] == "12.2"
    assert sorted(gpu["ai_models"]) == ["Mistral 7B", "llama2-7b"]
    assert gpu["price_per_hour"] == "2.125000"


@pytest.mark.parametrize("miner_id", ["default", None, "m-1"])
def test_miner_id_header_default_absent_or_own_is_accepted(
    api: Api, miner: str, miner_id: str | None
) -> None:
    response = _register(api, miner, {"name": "RTX 4090"}, miner_id=miner_id)

    assert response.status_code == 201, response.text
    assert response.json()["miner_id"] == "m-1"
    assert details(api, response.json()["gpu_id"])["miner_id"] == "m-1"


def test_miner_id_header_naming_another_miner_is_403(api: Api, miner: str) -> None:
    before = state(api)

    response = _register(api, miner, {"name": "RTX 4090"}, miner_id="m-2")

    assert_error(response, 403, "miner_id_mismatch")
    assert state(api) == before


def test_admin_registers_for_the_miner_it_names(api: Api) -> None:
    response = _register(api, ADMIN_KEY, {"name": "H100", "memory_gb": 80}, miner_id="m-7")

    assert response.status_code == 201, response.text
    gpu = details(api, response.json()["gpu_id"])
    assert gpu["miner_id"] == "m-7"
    assert gpu["status"] == "available"


@pytest.mark.parametrize("miner_id", [None, "default", ""])
def test_admin_must_name_the_miner(api: Api, miner_id: str | None) -> None:
    before = state(api)

    response = _register(api, ADMIN_KEY, {"name": "H100"}, miner_id=miner_id)

    assert_error(response, 422, "miner_id_required")
    assert state(api) == before


def test_a_registered_gpu_is_available_at_once(api: Api, miner: str) -> None:
    api.clock.advance(seconds=3600)

    gpu_id = api.register_gpu(miner)

    gpu = details(api, gpu_id)
    assert gpu["status"] == "available"
    assert gpu["last_heartbeat"] == _iso(api.clock.now())
    assert listed_ids(api, available="true") == [gpu_id]


def test_each_cli_registration_adds_a_gpu(api: Api, miner: str) -> None:
    first = api.register_gpu(miner)
    second = api.register_gpu(miner)

    assert first != second
    assert sorted(listed_ids(api)) == sorted([first, second])


# --- details ----------------------------------------------------------------------------


def test_details_has_every_field(api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(
        miner,
        name="RTX 4090",
        memory_gb=24,
        cuda_cores=16384,
        compute_capability="8.9",
        cuda_version="12.4",
        region="eu-west",
        price_per_hour="0.5",
        ai_models=["llama2-7b"],
        description="fast",
    )

    gpu = details(api, gpu_id)

    assert set(gpu) >= DETAIL_FIELDS, DETAIL_FIELDS - set(gpu)
    assert gpu == gpu | {
        "gpu_id": gpu_id,
        "miner_id": "m-1",
        "model": "RTX 4090",
        "memory_gb": 24,
        "cuda_cores": 16384,
        "compute_capability": "8.9",
        "cuda_version": "12.4",
        "region": "eu-west",
        "price_per_hour": "0.500000",
        "status": "available",
        "ai_models": ["llama2-7b"],
        "description": "fast",
        "created_at": _iso(api.clock.now()),
        "last_heartbeat": _iso(api.clock.now()),
        "health": {},
        "average_rating": None,
        "review_count": 0,
        "total_bookings": 0,
        "booking_expires": None,
    }


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("0.5", "0.500000"),
        (0.5, "0.500000"),
        ("12", "12.000000"),
        ("0.000001", "0.000001"),
        ("999999.999999", "999999.999999"),
        (3, "3.000000"),
    ],
)
def test_price_is_an_exact_six_decimal_string(api: Api, miner: str, sent: Any, shown: str) -> None:
    gpu_id = api.register_gpu(miner, price_per_hour=sent)

    assert details(api, gpu_id)["price_per_hour"] == shown
    assert list_gpus(api)[0]["price_per_hour"] == shown


def test_details_of_an_unknown_gpu_is_404(api: Api) -> None:
    assert_error(api.call("GET", gpu_path("gpu_does_not_exist")), 404, "gpu_not_found")


# --- update -----------------------------------------------------------------------------


def test_owner_changes_price_and_description(api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner, description="old")

    response = api.call(
        "PATCH", gpu_path(gpu_id), miner, json={"price_per_hour": "0.75", "description": "new"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["price_per_hour"] == "0.750000"
    assert response.json()["description"] == "new"
    gpu = details(api, gpu_id)
    assert (gpu["price_per_hour"], gpu["description"]) == ("0.750000", "new")
    assert list_gpus(api)[0]["price_per_hour"] == "0.750000"


def test_patching_only_the_price_keeps_the_description(api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner, description="keep me")

    api.call("PATCH", gpu_path(gpu_id), miner, json={"price_per_hour": 2})

    gpu = details(api, gpu_id)
    assert (gpu["price_per_hour"], gpu["description"]) == ("2.000000", "keep me")


def test_patching_only_the_description_keeps_the_price(api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner, price_per_hour="0.4", description="x")

    api.call("PATCH", gpu_path(gpu_id), miner, json={"description": None})

    gpu = details(api, gpu_id)
    assert (gpu["price_per_hour"], gpu["description"]) == ("0.400000", None)


def test_admin_may_change_any_gpu(api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner)

    response = api.call("PATCH", gpu_path(gpu_id), ADMIN_KEY, json={"price_per_hour": "0.1"})

    assert response.status_code == 200, response.text
    assert details(api, gpu_id)["price_per_hour"] == "0.100000"


def test_another_miner_cannot_change_the_gpu(api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner)
    other = api.key("miner", "m-2")
    before = state(api)

    response = api.call("PATCH", gpu_path(gpu_id), other, json={"price_per_hour": "0.01"})

    assert_error(response, 403, "not_gpu_owner")
    assert state(api) == before


@pytest.mark.parametrize(
    "body",
    [
        {"price_per_hour": "-1"},
        {"price_per_hour": "0.1234567"},
        {"price_per_hour": "2000000"},
        {"price_per_hour": "cheap"},
        {"description": "x" * 2001},
        {"memory_gb": 48},
        {"model": "RTX 5090"},
    ],
)
def test_invalid_update_is_422_and_changes_nothing(api: Api, miner: str, body: Any) -> None:
    gpu_id = api.register_gpu(miner)
    before = state(api)

    assert_error(api.call("PATCH", gpu_path(gpu_id), miner, json=body), 422, "validation_error")

    assert state(api) == before


def test_updating_an_unknown_gpu_is_404(api: Api, miner: str) -> None:
    response = api.call("PATCH", gpu_path("gpu_nope"), miner, json={"description": "x"})

    assert_error(response, 404, "gpu_not_found")


# --- delist -----------------------------------------------------------------------------


def test_owner_delists_a_gpu(api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner)
    kept = api.register_gpu(miner)

    response = api.call("DELETE", gpu_path(gpu_id), miner)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "delisted"
    assert listed_ids(api) == [kept]
    assert listed_ids(api, available="true") == [kept]
    assert details(api, gpu_id)["status"] == "delisted"
    assert listed_ids(api, status="delisted") == [gpu_id]


def test_delisted_gpu_stays_delisted_when_its_miner_goes_offline(api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner)
    api.call("DELETE", gpu_path(gpu_id), miner)

    api.clock.advance(seconds=600)

    assert details(api, gpu_id)["status"] == "delisted"
    assert listed_ids(api, status="offline") == []


def test_admin_may_delist_any_gpu(api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner)

    assert api.call("DELETE", gpu_path(gpu_id), ADMIN_KEY).status_code == 200

    assert listed_ids(api) == []


def test_another_miner_cannot_delist_the_gpu(api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner)
    other = api.key("miner", "m-2")
    before = state(api)

    assert_error(api.call("DELETE", gpu_path(gpu_id), other), 403, "not_gpu_owner")

    assert state(api) == before
    assert listed_ids(api) == [gpu_id]


def test_delisting_an_unknown_gpu_is_404(api: Api, miner: str) -> None:
    assert_error(api.call("DELETE", gpu_path("gpu_nope"), miner), 404, "gpu_not_found")
