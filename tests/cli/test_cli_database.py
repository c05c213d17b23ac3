"""`aitbc db upgrade` / `aitbc serve` against a PostgreSQL database that does not exist: one
line saying what is missing and how to create it; `aitbc db create` creates it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from aitbc.cli.main import cli

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture
def missing_database() -> Iterator[str]:
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except OperationalError:
        admin.dispose()
        pytest.skip("no PostgreSQL server at 127.0.0.1:5432")
    name = f"aitbc_missing_{uuid.uuid4().hex[:8]}"
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_missing_database_is_one_line_with_the_way_to_create_it(missing_database: str) -> None:
    url = f"{SERVER}/{missing_database}"
    for command in (["db", "upgrade"], ["serve"]):
        result = CliRunner().invoke(cli, [*command, "--database-url", url])
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output, result.output
        assert f"no database '{missing_database}'" in lines[0]
        assert "aitbc db create --database-url" in lines[0]

    created = CliRunner().invoke(cli, ["db", "create", "--database-url", url])
    assert created.exit_code == 0 and "created database" in created.output, created.output
    again = CliRunner().invoke(cli, ["db", "create", "--database-url", url])
    assert again.exit_code == 0 and "exists already" in again.output, again.output
    upgraded = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", url])
    assert upgraded.exit_code == 0 and "database at head" in upgraded.output, upgraded.output


def test_an_unreachable_server_is_one_line_too() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/anything"
    result = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Cannot reach PostgreSQL at 127.0.0.1:1")
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_an_asyncpg_url_is_taken_as_the_psycopg_one(missing_database: str) -> None:
    created = CliRunner().invoke(
        cli, ["db", "create", "--database-url", f"{SERVER}/{missing_database}"]
    )
    assert created.exit_code == 0, created.output
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{missing_database}"
    upgraded = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", url])
    assert upgraded.exit_code == 0 and "database at head" in upgraded.output, upgraded.output
    assert "Traceback" not in upgraded.output


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve"]])
def test_an_unsupported_url_is_one_line_naming_the_accepted_forms(command: list[str]) -> None:
    url = "mysql+pymysql://root:secret@127.0.0.1/aitbc"
    result = CliRunner().invoke(cli, [*command, "--database-url", url])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "'mysql+pymysql'" in result.output and "postgresql+psycopg://" in result.output
    assert "secret" not in result.output
