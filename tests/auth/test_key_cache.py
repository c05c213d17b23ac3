"""API key lookups are remembered per process for half a second: a revoked key is refused at
once by the process that revoked it, and by every other process within that half second."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text

from aitbc.auth.principal import KEY_CACHE_SECONDS, Authenticator
from tests.support.api import ADMIN_KEY, Api
from tests.support.responses import assert_error


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(api: Api, app: FastAPI) -> Iterator[Ticks]:
    ticks = Ticks()
    original = app.state.authenticator
    app.state.authenticator = Authenticator(app.state.store, admin_key=ADMIN_KEY, monotonic=ticks)
    yield ticks
    app.state.authenticator = original


def _revoke_elsewhere(database_url: str, owner_id: str) -> None:
    """As another server process would: straight in the database, this process not told."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE api_keys SET revoked_at = created_at WHERE owner_id = :o"),
                {"o": owner_id},
            )
    finally:
        engine.dispose()


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_time(
    api: Api, ticks: Ticks, database_url: str
) -> None:
    key = api.key("client", "c-1")
    assert api.call("GET", "/v1/me", key).status_code == 200

    _revoke_elsewhere(database_url, "c-1")
    ticks.now += KEY_CACHE_SECONDS * 0.9
    assert api.call("GET", "/v1/me", key).status_code == 200  # still remembered

    ticks.now += KEY_CACHE_SECONDS * 0.2
    assert_error(api.call("GET", "/v1/me", key), 401, "invalid_api_key")
    assert KEY_CACHE_SECONDS <= 1.0


def test_the_revoking_process_refuses_the_key_at_once(api: Api, ticks: Ticks) -> None:
    key = api.key("client", "c-1")
    assert api.call("GET", "/v1/me", key).status_code == 200
    key_id = api.call("GET", "/v1/me", key).json()["key_id"]

    revoked = api.call("DELETE", f"/v1/admin/api-keys/{key_id}", ADMIN_KEY)

    assert revoked.status_code == 200, revoked.text
    assert_error(api.call("GET", "/v1/me", key), 401, "invalid_api_key")


def test_a_refused_key_is_looked_up_again_each_time(
    api: Api, ticks: Ticks, database_url: str
) -> None:
    """Nothing is remembered about an unknown key: once created, it works at once."""
    assert_error(api.call("GET", "/v1/me", "aitbc_not-yet"), 401, "invalid_api_key")
    key = api.key("client", "c-2")

    assert api.call("GET", "/v1/me", key).status_code == 200
