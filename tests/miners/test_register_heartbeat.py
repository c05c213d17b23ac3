"""Miner registration (one registry entry per GPU, re-registering updates), heartbeats (health,
liveness) and offline detection driven by the injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aitbc.app import create_app
from aitbc.config import Settings
from aitbc.kit.clock import ManualClock
from tests.support.api import Api
from tests.support.gpus import details, list_gpus, listed_ids, register_miner, state
from tests.support.market import heartbeat
from tests.support.responses import assert_error

REGISTER = "/v1/miners/register"
HEARTBEAT = "/v1/miners/heartbeat"

RIG = [
    {
        "model": "RTX 4090",
        "memory_gb": 24,
        "cuda_version": "12.4",
        "compute_capability": "8.9",
        "cuda_cores": 16384,
        "ai_models": ["llama2-7b", "sdxl"],
        "price_per_hour": "0.5",
    },
    {"model": "RTX 4090", "memory_gb": 24, "price_per_hour": "0.55"},
    {"model": "A100", "memory_gb": 80, "price_per_hour": "2.25", "description": "SXM4"},
]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def miner(api: Api) -> str:
    return api.key("miner", "m-1")


# --- registration -----------------------------------------------------------------------


def test_register_creates_one_gpu_per_listed_gpu(api: Api, miner: str) -> None:
    body = register_miner(api, miner, RIG, region="eu-west", concurrency=2)

    assert body["miner_id"] == "m-1"
    assert body["region"] == "eu-west"
    assert body["concurrency"] == 2
    assert body["status"] == "online"
    refs = body["gpus"]
    assert [r["slot"] for r in refs] == ["0", "1", "2"]
    assert len({r["gpu_id"] for r in refs}) == 3
    listed = {g["gpu_id"]: g for g in list_gpus(api)}
    assert set(listed) == {r["gpu_id"] for r in refs}
    first, _, third = (listed[r["gpu_id"]] for r in refs)
    assert first["model"] == "RTX 4090"
    assert first["memory_gb"] == 24
    assert first["cuda_version"] == "12.4"
    assert first["compute_capability"] == "8.9"
    assert first["cuda_cores"] == 16384
    assert sorted(first["ai_models"]) == ["llama2-7b", "sdxl"]
    assert first["price_per_hour"] == "0.500000"
    assert third["price_per_hour"] == "2.250000"
    assert third["description"] == "SXM4"
    for gpu in listed.values():
        assert gpu["miner_id"] == "m-1"
        assert gpu["region"] == "eu-west"
        assert gpu["status"] == "available"


def test_registering_again_updates_and_never_duplicates(api: Api, miner: str) -> None:
    first = register_miner(api, miner, RIG, region="eu-west")
    changed = [dict(RIG[0], price_per_hour="0.9"), RIG[1], dict(RIG[2], memory_gb=40)]

    second = register_miner(api, miner, changed, region="us-east")
    register_miner(api, miner, changed, region="us-east")

    assert [r["gpu_id"] for r in second["gpus"]] == [r["gpu_id"] for r in first["gpus"]]
    listed = {g["gpu_id"]: g for g in list_gpus(api)}
    assert len(listed) == 3
    gpu0, gpu1, gpu2 = (listed[r["gpu_id"]] for r in first["gpus"])
    assert gpu0["price_per_hour"] == "0.900000"
    assert gpu1["price_per_hour"] == "0.550000"
    assert gpu2["memory_gb"] == 40
    assert {g["region"] for g in listed.values()} == {"us-east"}


def test_named_slots_keep_their_identity_across_registrations(api: Api, miner: str) -> None:
    first = register_miner(
        api,
        miner,
        [
            {"slot": "gpu-a", "model": "RTX 4090", "memory_gb": 24, "price_per_hour": "1"},
            {"slot": "gpu-b", "model": "RTX 3090", "memory_gb": 24, "price_per_hour": "1"},
        ],
    )
    ids = {r["slot"]: r["gpu_id"] for r in first["gpus"]}

    again = register_miner(
        api,
        miner,
        [
            {"slot": "gpu-b", "model": "RTX 3090", "memory_gb": 24, "price_per_hour": "0.7"},
            {"slot": "gpu-a", "model": "RTX 4090", "memory_gb": 24, "price_per_hour": "1.2"},
        ],
    )

    assert {r["slot"]: r["gpu_id"] for r in again["gpus"]} == ids
    assert details(api, ids["gpu-a"])["price_per_hour"] == "1.200000"
    assert details(api, ids["gpu-b"])["price_per_hour"] == "0.700000"
    assert len(list_gpus(api)) == 2


def test_two_miners_with_the_same_slots_get_separate_gpus(api: Api, miner: str) -> None:
    other = api.key("miner", "m-2")

    mine = register_miner(api, miner, RIG[:1])
    theirs = register_miner(api, other, RIG[:1])

    assert mine["gpus"][0]["gpu_id"] != theirs["gpus"][0]["gpu_id"]
    assert sorted(g["miner_id"] for g in list_gpus(api)) == ["m-1", "m-2"]


@pytest.mark.parametrize(
    "body",
    [
        {"gpus": [dict(RIG[0], memory_gb=-1)]},
        {"capabilities": {"gpu": {"memory_gb": -1}}},
        {"capabilities": {"gpus": [{"name": "x" * 129}]}},
        {"gpus": [dict(RIG[0], price_per_hour="-0.5")]},
        {"gpus": [dict(RIG[0], price_per_hour="0.1234567")]},
        {"gpus": [{"model": "RTX 4090", "memory_gb": 24}]},
        {"gpus": [dict(RIG[0], overclocked=True)]},
        {"gpus": RIG, "concurrency": 0},
        {"gpus": [RIG[1]] * 65},
        {"gpus": RIG, "nickname": "rig"},
        {"gpus": "RTX 4090"},
    ],
)
def test_invalid_registration_is_422_and_changes_nothing(api: Api, miner: str, body: Any) -> None:
    register_miner(api, miner, RIG[:1])
    before = state(api)

    assert_error(api.call("POST", REGISTER, miner, json=body), 422, "validation_error")

    assert state(api) == before


# --- heartbeats -------------------------------------------------------------------------


def test_heartbeat_records_health_per_gpu(api: Api, miner: str) -> None:
    refs = register_miner(api, miner, RIG)["gpus"]
    api.clock.advance(seconds=30)

    body = heartbeat(
        api,
        miner,
        status="online",
        inflight=2,
        gpus=[{"slot": "1", "temperature_c": 71.5, "utilization_pct": 93, "memory_used_gb": 20}],
    )

    assert body["inflight"] == 2
    assert body["last_heartbeat"] == _iso(api.clock.now())
    gpu1 = details(api, refs[1]["gpu_id"])
    assert gpu1["health"] == {"temperature_c": 71.5, "utilization_pct": 93, "memory_used_gb": 20}
    assert gpu1["last_heartbeat"] == _iso(api.clock.now())
    assert details(api, refs[0]["gpu_id"])["health"] == {}


def test_a_later_heartbeat_replaces_the_health_report(api: Api, miner: str) -> None:
    gpu_id = register_miner(api, miner, RIG[:1])["gpus"][0]["gpu_id"]
    heartbeat(api, miner, gpus=[{"slot": "0", "temperature_c": 80, "utilization_pct": 100}])

    heartbeat(api, miner, gpus=[{"slot": "0", "temperature_c": 40}])

    assert details(api, gpu_id)["health"] == {"temperature_c": 40}


def test_heartbeat_from_an_unregistered_miner_is_404(api: Api, miner: str) -> None:
    response = api.call("POST", HEARTBEAT, miner, json={"status": "online"})

    assert_error(response, 404, "miner_not_registered")
    assert list_gpus(api) == []


@pytest.mark.parametrize(
    "slots",
    [("x", "x"), ("0", "0"), ("1", None)],  # None: its index in the list, 1
    ids=["named twice", "zero twice", "a name and an index"],
)
def test_two_gpus_in_one_slot_is_422_and_changes_nothing(
    api: Api, miner: str, slots: tuple[str, str | None]
) -> None:
    """A mistake in the request, not a race: answered 422, not 409 (which says retry)."""
    before = state(api)
    gpus = [
        dict(spec, slot=slot) if slot else dict(spec)
        for spec, slot in zip(RIG[:2], slots, strict=True)
    ]
    assert_error(api.call("POST", REGISTER, miner, json={"gpus": gpus}), 422, "duplicate_slot")
    assert state(api) == before


def test_heartbeat_naming_an_unknown_slot_is_404_and_changes_nothing(api: Api, miner: str) -> None:
    register_miner(api, miner, RIG[:1])
    api.clock.advance(seconds=60)
    before = state(api)

    response = api.call(
        "POST",
        HEARTBEAT,
        miner,
        json={"gpus": [{"slot": "0", "temperature_c": 50}, {"slot": "9", "temperature_c": 50}]},
    )

    assert_error(response, 404, "gpu_not_found")
    assert state(api) == before


@pytest.mark.parametrize(
    "body",
    [
        {"status": "x" * 33},
        {"inflight": -1},
        {"gpus": [{"slot": "0", "temperature_c": 1000}]},
        {"gpus": [{"slot": "0", "utilization_pct": 101}]},
        {"gpus": [{"slot": "0", "memory_used_gb": -1}]},
        {"gpus": [{"slot": "0", "fan_rpm": 3000}]},
        {"gpus": [{"temperature_c": 50}]},
        {"gpu_utilization": 101},
    ],
)
def test_invalid_heartbeat_is_422_and_changes_nothing(api: Api, miner: str, body: Any) -> None:
    register_miner(api, miner, RIG[:1])
    api.clock.advance(seconds=60)
    before = state(api)

    assert_error(api.call("POST", HEARTBEAT, miner, json=body), 422, "validation_error")

    assert state(api) == before


# --- offline detection ------------------------------------------------------------------


def test_gpus_go_offline_after_90_seconds_without_heartbeat_and_come_back(
    api: Api, miner: str
) -> None:
    gpu_id = register_miner(api, miner, RIG[:1])["gpus"][0]["gpu_id"]

    api.clock.advance(seconds=89)
    assert details(api, gpu_id)["status"] == "available"
    assert listed_ids(api, available="true") == [gpu_id]

    api.clock.advance(seconds=2)
    assert details(api, gpu_id)["status"] == "offline"
    assert [g["status"] for g in list_gpus(api)] == ["offline"]
    assert listed_ids(api, available="true") == []
    assert listed_ids(api, status="offline") == [gpu_id]

    heartbeat(api, miner, status="online")
    assert details(api, gpu_id)["status"] == "available"
    assert [g["status"] for g in list_gpus(api)] == ["available"]
    assert listed_ids(api, available="true") == [gpu_id]


def test_a_heartbeat_exactly_90_seconds_old_is_still_online(api: Api, miner: str) -> None:
    gpu_id = register_miner(api, miner, RIG[:1])["gpus"][0]["gpu_id"]

    api.clock.advance(seconds=90)

    assert details(api, gpu_id)["status"] == "available"


def test_regular_heartbeats_keep_a_miner_online(api: Api, miner: str) -> None:
    gpu_id = register_miner(api, miner, RIG[:1])["gpus"][0]["gpu_id"]

    for _ in range(5):
        api.clock.advance(seconds=60)
        heartbeat(api, miner)

    assert details(api, gpu_id)["status"] == "available"
    api.clock.advance(seconds=91)
    assert details(api, gpu_id)["status"] == "offline"


def test_only_the_silent_miners_gpus_go_offline(api: Api, miner: str) -> None:
    other = api.key("miner", "m-2")
    mine = register_miner(api, miner, RIG[:2])["gpus"]
    theirs = register_miner(api, other, RIG[2:])["gpus"]

    api.clock.advance(seconds=60)
    heartbeat(api, miner)
    api.clock.advance(seconds=60)

    assert sorted(listed_ids(api, available="true")) == sorted(r["gpu_id"] for r in mine)
    assert listed_ids(api, status="offline") == [theirs[0]["gpu_id"]]


def test_heartbeat_status_offline_makes_the_gpus_offline_at_once(api: Api, miner: str) -> None:
    refs = register_miner(api, miner, RIG[:2])["gpus"]

    body = heartbeat(api, miner, status="offline")

    assert body["status"] == "offline"
    for ref in refs:
        assert details(api, ref["gpu_id"])["status"] == "offline"
    assert listed_ids(api, available="true") == []
    heartbeat(api, miner, status="online")
    assert sorted(listed_ids(api, available="true")) == sorted(r["gpu_id"] for r in refs)


def test_registering_again_counts_as_a_heartbeat(api: Api, miner: str) -> None:
    gpu_id = register_miner(api, miner, RIG[:1])["gpus"][0]["gpu_id"]
    api.clock.advance(seconds=300)
    assert details(api, gpu_id)["status"] == "offline"

    register_miner(api, miner, RIG[:1])

    assert details(api, gpu_id)["status"] == "available"
    assert details(api, gpu_id)["last_heartbeat"] == _iso(api.clock.now())


def test_gpus_registered_through_the_cli_path_follow_the_miners_heartbeat(
    api: Api, miner: str
) -> None:
    gpu_id = api.register_gpu(miner)
    assert details(api, gpu_id)["status"] == "available"

    api.clock.advance(seconds=91)
    assert details(api, gpu_id)["status"] == "offline"

    heartbeat(api, miner, gpus=[{"slot": gpu_id, "temperature_c": 55}])
    gpu = details(api, gpu_id)
    assert gpu["status"] == "available"
    assert gpu["health"] == {"temperature_c": 55}


@pytest.fixture
def short_timeout_api(settings: Settings, clock: ManualClock) -> Iterator[Api]:
    app = create_app(settings.model_copy(update={"heartbeat_timeout_seconds": 30}), clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client=client, clock=clock)


def test_the_heartbeat_timeout_is_a_setting(short_timeout_api: Api) -> None:
    api = short_timeout_api
    gpu_id = register_miner(api, api.key("miner", "m-1"), RIG[:1])["gpus"][0]["gpu_id"]

    api.clock.advance(seconds=29)
    assert details(api, gpu_id)["status"] == "available"
    api.clock.advance(seconds=2)
    assert details(api, gpu_id)["status"] == "offline"


# --- delisting holds; one card, one GPU ---------------------------------------------------


def test_registering_again_leaves_a_gpu_its_owner_delisted_delisted(api: Api, miner: str) -> None:
    gpus = register_miner(api, miner, RIG)["gpus"]
    delisted = gpus[2]["gpu_id"]
    assert api.call("DELETE", f"/v1/marketplace/gpu/{delisted}", miner).status_code == 200

    register_miner(api, miner, RIG)
    assert details(api, delisted)["status"] == "delisted"
    assert delisted not in listed_ids(api)

    relisted = api.call("POST", f"/v1/marketplace/gpu/{delisted}/relist", miner)
    assert relisted.status_code == 200, relisted.text
    assert relisted.json()["status"] == "available"
    assert delisted in listed_ids(api)


def test_only_its_miner_or_an_admin_relists(api: Api, miner: str) -> None:
    gpu_id = register_miner(api, miner, RIG[:1])["gpus"][0]["gpu_id"]
    api.call("DELETE", f"/v1/marketplace/gpu/{gpu_id}", miner)
    other = api.key("miner", "m-2")
    refused = api.call("POST", f"/v1/marketplace/gpu/{gpu_id}/relist", other)
    assert_error(refused, 403, "not_gpu_owner")
    assert details(api, gpu_id)["status"] == "delisted"


def test_a_miner_that_left_and_registers_again_has_its_gpus_listed_again(
    api: Api, miner: str
) -> None:
    gpus = [g["gpu_id"] for g in register_miner(api, miner, RIG)["gpus"]]
    assert api.call("DELETE", "/v1/miners/m-1", miner).status_code == 200
    assert {details(api, g)["status"] for g in gpus} == {"delisted"}

    register_miner(api, miner, RIG)
    assert {details(api, g)["status"] for g in gpus} == {"available"}


def test_a_card_registered_alone_then_with_its_machine_is_one_gpu(api: Api, miner: str) -> None:
    alone = api.register_gpu(miner, name="RTX 4090", memory_gb=24, price_per_hour="0.5")
    machine = register_miner(api, miner, [RIG[0], RIG[2]])["gpus"]
    assert machine[0] == {"slot": "0", "gpu_id": alone}
    assert sorted(listed_ids(api)) == sorted(g["gpu_id"] for g in machine)


def test_a_daemons_registration_again_keeps_what_the_owner_set(api: Api) -> None:
    """A daemon describes its hardware; the listing (price, pricing mode, description) is
    its owner's, and a restart of the daemon must not reset it."""
    miner = api.key("miner", "m1")
    caps = {"gpu": {"model": "RTX 4090", "memory_gb": 24, "cuda_version": "12.4"}}
    first = api.call("POST", "/v1/miners/register", miner, json={"capabilities": caps})
    gpu_id = first.json()["gpus"][0]["gpu_id"]
    listing = {"price_per_hour": "1.5", "pricing_mode": "dynamic", "description": "my box"}
    patched = api.call("PATCH", f"/v1/marketplace/gpu/{gpu_id}", miner, json=listing)
    assert patched.status_code == 200, patched.text
    before = api.call("GET", f"/v1/marketplace/gpu/{gpu_id}").json()
    caps["gpu"]["cuda_version"] = "12.6"  # the host's driver was updated
    again = api.call("POST", "/v1/miners/register", miner, json={"capabilities": caps})
    assert again.status_code == 200 and again.json()["gpus"][0]["gpu_id"] == gpu_id
    after = api.call("GET", f"/v1/marketplace/gpu/{gpu_id}").json()
    for name in ("price_per_hour", "pricing_mode", "description"):
        assert after[name] == before[name], name
    assert after["cuda_version"] == "12.6"
