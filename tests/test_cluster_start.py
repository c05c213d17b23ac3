"""Nodes of a cluster starting together: the migrations and the first admin key happen once
(an advisory lock on PostgreSQL), and ``aitbc serve --no-migrate`` starts only on a database
that is already at the schema this version needs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from aitbc.cli.main import cli
from aitbc.migrate import SchemaBehind, require_current, upgrade
from tests.support.api import PG_URL
from tests.support.served import postgres_database

# Each process imports, then waits for the same moment, so that the three reach the
# migrations together (as three nodes started at once by an orchestrator do).
_NODE = """
import sys, time
from aitbc.migrate import bootstrap_admin_key, upgrade
url, start_at = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
upgrade(url)
print(bootstrap_admin_key(url, configured_admin_key=None) or "")
"""


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("the race of several nodes is a PostgreSQL matter (SQLite is one host)")
    with postgres_database(PG_URL, "start", migrated=False) as url:
        yield url


def test_three_nodes_starting_at_once_on_an_empty_database_migrate_it_once(
    empty_postgres: str,
) -> None:
    start_at = str(time.time() + 4)
    nodes = [
        subprocess.Popen(
            [sys.executable, "-c", _NODE, empty_postgres, start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [node.communicate(timeout=120) for node in nodes]
    failures = [err for node, (_, err) in zip(nodes, results, strict=True) if node.returncode]
    assert failures == []
    shown = [out.strip() for out, _ in results if out.strip()]
    assert len(shown) == 1  # one admin key, shown by the one node that made it
    engine = create_engine(empty_postgres)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        admins = conn.execute(text("SELECT count(*) FROM api_keys WHERE role = 'admin'"))
        assert admins.scalar() == 1
    engine.dispose()


def test_a_database_behind_the_code_is_refused_with_what_to_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with pytest.raises(SchemaBehind, match="aitbc db upgrade"):
        require_current(url)
    upgrade(url)
    require_current(url)  # at head: nothing to say


def test_serve_no_migrate_refuses_an_unmigrated_database_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(cli, ["serve", "--no-migrate", "--database-url", url])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert "aitbc db upgrade" in last and "--no-migrate" in last
    assert not (tmp_path / "fresh.db").exists() or _tables(url) == set()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        found = {row[0] for row in names}
    engine.dispose()
    return found
