"""Test fixtures. The real migrations build the database once per run; every test gets a
clean copy (SQLite: a copy of the migrated file; PostgreSQL: every row deleted and the
sequences restarted, in one round trip: a TRUNCATE of the 21 tables costs ten times as
much when they hold a test's few rows).

Backend: ``AITBC_TEST_DATABASE_URL`` (a PostgreSQL URL) or SQLite when unset."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aitbc.app import create_app
from aitbc.config import Settings
from aitbc.kit.clock import ManualClock
from aitbc.migrate import upgrade
from aitbc.models import Base
from tests.support.api import ADMIN_KEY, PG_URL, Api, settings_for
from tests.support.client import FastTestClient
from tests.support.market import Market
from tests.support.served import postgres_database, serve

# In CI the property-based tests replay the same examples every run, so a result can be
# reproduced; locally they keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if PG_URL:
        with postgres_database(PG_URL, "test") as url:
            yield url
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def _emptied(template_db: str) -> Iterator[Callable[[], None]]:
    """Empties the PostgreSQL template database for the next test."""
    engine = create_engine(template_db)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        sequences = list(
            conn.scalars(text("SELECT sequence_name FROM information_schema.sequences"))
        )
    statement = "; ".join(
        [f'DELETE FROM "{t}"' for t in tables]
        + [f'ALTER SEQUENCE "{s}" RESTART' for s in sequences]
    )

    def empty() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)

    yield empty
    engine.dispose()


@pytest.fixture
def database_url(template_db: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if PG_URL:
        request.getfixturevalue("_emptied")()
        yield template_db
    else:
        source = Path(make_url(template_db).database or "")
        target = tmp_path / "test.db"
        shutil.copyfile(source, target)
        yield f"sqlite:///{target}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url)


@pytest.fixture
def app(settings: Settings, clock: ManualClock) -> FastAPI:
    return create_app(settings, clock=clock)


@pytest.fixture
def api(app: FastAPI, clock: ManualClock) -> Iterator[Api]:
    with FastTestClient(app, raise_server_exceptions=False) as client:
        yield Api(client=client, clock=clock)


@pytest.fixture
def admin_key() -> str:
    return ADMIN_KEY


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The same app served over real HTTP on a free port, for the CLI."""
    with serve(app) as url:
        yield url


@pytest.fixture
def market(api: Api) -> Market:
    """Keys, funds, GPUs and heartbeats on the app under test (tests.support.market)."""
    return Market(api)
