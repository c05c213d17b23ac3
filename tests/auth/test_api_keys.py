"""API keys: creation by an admin, listing without secrets, revocation, ``/v1/me``, the
bootstrap admin key, and how the ``X-Api-Key`` header is read (empty = anonymous)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import GPU_LIST, GPU_REGISTER, gpu_path, state
from tests.support.responses import assert_error

KEYS = "/v1/admin/api-keys"


@pytest.mark.parametrize("role", ["client", "miner", "admin"])
def test_admin_creates_a_key_for_each_role(api: Api, role: str) -> None:
    response = api.call("POST", KEYS, ADMIN_KEY, json={"role": role, "owner_id": f"{role}-7"})

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"key", "key_id", "role", "owner_id"}
    assert body["role"] == role
    assert body["owner_id"] == f"{role}-7"
    assert len(body["key"]) >= 32
    me = api.call("GET", "/v1/me", body["key"])
    assert me.status_code == 200, me.text
    assert me.json() == {"owner_id": f"{role}-7", "role": role, "key_id": body["key_id"]}


def test_every_key_is_distinct_even_for_the_same_owner(api: Api) -> None:
    first = api.call("POST", KEYS, ADMIN_KEY, json={"role": "miner", "owner_id": "m-1"}).json()
    second = api.call("POST", KEYS, ADMIN_KEY, json={"role": "miner", "owner_id": "m-1"}).json()

    assert first["key"] != second["key"]
    assert first["key_id"] != second["key_id"]
    for created in (first, second):
        me = api.call("GET", "/v1/me", created["key"]).json()
        assert me["key_id"] == created["key_id"]


def test_a_key_created_by_an_admin_key_can_itself_administer(api: Api) -> None:
    second_admin = api.key("admin", "ops")

    created = api.call("POST", KEYS, second_admin, json={"role": "client", "owner_id": "c-9"})

    assert created.status_code == 201, created.text
    assert api.call("GET", "/v1/me", created.json()["key"]).json()["owner_id"] == "c-9"


def test_the_configured_admin_key_is_an_admin(api: Api) -> None:
    me = api.call("GET", "/v1/me", ADMIN_KEY)

    assert me.status_code == 200, me.text
    assert me.json()["role"] == "admin"


def test_list_shows_every_key_without_its_secret(api: Api) -> None:
    created = [
        api.call("POST", KEYS, ADMIN_KEY, json={"role": r, "owner_id": o}).json()
        for r, o in [("client", "c-1"), ("miner", "m-1"), ("admin", "ops")]
    ]

    response = api.call("GET", KEYS, ADMIN_KEY)

    assert response.status_code == 200, response.text
    listed = response.json()
    assert isinstance(listed, list)
    by_id = {k["key_id"]: k for k in listed}
    assert set(by_id) == {c["key_id"] for c in created}
    for c in created:
        item = by_id[c["key_id"]]
        assert item["role"] == c["role"]
        assert item["owner_id"] == c["owner_id"]
        assert item["revoked_at"] is None
        assert "key" not in item and "key_hash" not in item
        assert c["key"] not in response.text
        assert c["key"].startswith(item["prefix"]) and item["prefix"] != c["key"]


def test_list_filters_by_role_and_owner(api: Api) -> None:
    api.key("client", "c-1")
    api.key("miner", "m-1")
    api.key("miner", "m-2")

    miners = api.call("GET", KEYS, ADMIN_KEY, params={"role": "miner"}).json()
    m2 = api.call("GET", KEYS, ADMIN_KEY, params={"owner_id": "m-2"}).json()
    page = api.call("GET", KEYS, ADMIN_KEY, params={"limit": 2}).json()

    assert sorted(k["owner_id"] for k in miners) == ["m-1", "m-2"]
    assert [(k["role"], k["owner_id"]) for k in m2] == [("miner", "m-2")]
    assert len(page) == 2


def test_secrets_are_stored_only_as_hashes(api: Api, database_url: str) -> None:
    secret = api.key("miner", "m-1")

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM api_keys")).all()
    finally:
        engine.dispose()

    assert len(rows) == 1
    assert all(secret not in str(value) for value in rows[0])


def test_revoking_a_key_takes_effect_on_the_next_request(api: Api) -> None:
    created = api.call("POST", KEYS, ADMIN_KEY, json={"role": "miner", "owner_id": "m-1"}).json()
    assert api.call("GET", "/v1/me", created["key"]).status_code == 200

    revoked = api.call("DELETE", f"{KEYS}/{created['key_id']}", ADMIN_KEY)

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["key_id"] == created["key_id"]
    assert revoked.json()["revoked_at"] is not None
    assert_error(api.call("GET", "/v1/me", created["key"]), 401, "invalid_api_key")
    register = api.call("POST", GPU_REGISTER, created["key"], json={"gpu": {"name": "RTX 4090"}})
    assert_error(register, 401, "invalid_api_key")
    listed = api.call("GET", KEYS, ADMIN_KEY).json()
    assert [k["revoked_at"] is not None for k in listed] == [True]


def test_revoking_one_key_leaves_the_owners_other_keys_working(api: Api) -> None:
    first = api.call("POST", KEYS, ADMIN_KEY, json={"role": "miner", "owner_id": "m-1"}).json()
    second = api.key("miner", "m-1")

    api.call("DELETE", f"{KEYS}/{first['key_id']}", ADMIN_KEY)

    assert api.call("GET", "/v1/me", second).status_code == 200


def test_revoking_an_unknown_key_is_404(api: Api) -> None:
    assert_error(api.call("DELETE", f"{KEYS}/key_nope", ADMIN_KEY), 404, "api_key_not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"role": "root", "owner_id": "x"},
        {"role": "miner"},
        {"owner_id": "m-1"},
        {"role": "miner", "owner_id": ""},
        {"role": "miner", "owner_id": "has space"},
        {"role": "miner", "owner_id": "m" * 129},
        {"role": "miner", "owner_id": 7},
        {"role": "miner", "owner_id": "m-1", "secret": "mine"},
    ],
)
def test_invalid_key_requests_are_422_and_create_nothing(api: Api, body: object) -> None:
    before = state(api)

    assert_error(api.call("POST", KEYS, ADMIN_KEY, json=body), 422)

    assert state(api) == before


# --- how the X-Api-Key header is read ---------------------------------------------------


def test_empty_header_is_anonymous_and_may_read_public_data(api: Api) -> None:
    gpu_id = api.register_gpu(api.key("miner", "m-1"))
    empty = {"X-Api-Key": ""}

    listed = api.client.get(GPU_LIST, headers=empty)
    one = api.client.get(gpu_path(gpu_id), headers=empty)

    assert listed.status_code == 200, listed.text
    assert [g["gpu_id"] for g in listed.json()] == [gpu_id]
    assert one.status_code == 200, one.text
    assert one.json()["gpu_id"] == gpu_id


@pytest.mark.parametrize("header", [{"X-Api-Key": ""}, {"X-Api-Key": "   "}, {}])
def test_anonymous_callers_get_401_authentication_required(
    api: Api, header: dict[str, str]
) -> None:
    me = api.client.get("/v1/me", headers=header)
    register = api.client.post(GPU_REGISTER, headers=header, json={"gpu": {"name": "RTX 4090"}})

    assert_error(me, 401, "authentication_required")
    assert_error(register, 401, "authentication_required")
    assert api.call("GET", GPU_LIST).json() == []


def test_unknown_key_is_401_invalid_api_key(api: Api) -> None:
    assert_error(api.call("GET", "/v1/me", "aitbc_not-a-real-key"), 401, "invalid_api_key")


def test_unknown_key_is_401_even_on_public_reads(api: Api) -> None:
    """An unknown or revoked key is an error, not a silent fall-back to anonymous."""
    gpu_id = api.register_gpu(api.key("miner", "m-1"))

    assert_error(api.call("GET", GPU_LIST, "aitbc_not-a-real-key"), 401, "invalid_api_key")
    assert_error(api.call("GET", gpu_path(gpu_id), "aitbc_not-a-real-key"), 401, "invalid_api_key")


def test_known_key_with_the_wrong_role_is_403(api: Api) -> None:
    client = api.key("client", "c-1")

    body = assert_error(api.call("GET", KEYS, client), 403, "wrong_role")

    assert "admin" in body["detail"]


@pytest.mark.parametrize(("first", "then"), [("miner", "client"), ("client", "miner")])
def test_an_owner_id_has_one_role(api: Api, first: str, then: str) -> None:
    api.key(first, "someone")
    again = api.call(
        "POST", "/v1/admin/api-keys", ADMIN_KEY, json={"role": then, "owner_id": "someone"}
    )
    assert_error(again, 409, "owner_role_taken")
    assert "someone" in again.json()["detail"]
    api.key(first, "someone")  # another key of the same role is fine
    listed = api.call("GET", "/v1/admin/api-keys", ADMIN_KEY, params={"owner_id": "someone"})
    assert {k["role"] for k in listed.json()} == {first}


def test_the_bootstrap_admins_owner_id_is_an_admins(api: Api) -> None:
    taken = api.call(
        "POST", "/v1/admin/api-keys", ADMIN_KEY, json={"role": "client", "owner_id": "admin"}
    )
    assert_error(taken, 409, "owner_role_taken")


@pytest.mark.parametrize("owner_id", ["platform", "world"])
@pytest.mark.parametrize("role", ["client", "miner"])
def test_the_platforms_own_accounts_take_only_admin_keys(
    api: Api, owner_id: str, role: str
) -> None:
    """A client key for the platform's owner id would spend its fees."""
    refused = api.call(
        "POST", "/v1/admin/api-keys", ADMIN_KEY, json={"role": role, "owner_id": owner_id}
    )
    assert_error(refused, 409, "owner_role_taken")
    api.key("admin", owner_id)  # an admin reads its balance
