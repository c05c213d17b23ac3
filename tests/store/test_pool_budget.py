"""A process's PostgreSQL connections: the pool closes what a quieter hour no longer uses,
and a node whose processes could open more connections than the server has left is refused
at start, in one line that gives the numbers."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from aitbc.cli.main import cli
from aitbc.store.pgpool import PgPool
from aitbc.store.store import _asyncpg_options
from tests.support.api import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL's connections")


def test_connections_idle_past_the_limit_are_closed(database_url: str) -> None:
    moment = [0.0]
    pool = PgPool(
        max_size=4,
        idle_seconds=60,
        clock=lambda: moment[0],
        **_asyncpg_options(make_url(database_url), 10),
    )

    async def scenario() -> tuple[int, int, int]:
        # Four at once (a busy moment), then one at a time for a while.
        leases = [pool.acquire() for _ in range(4)]
        conns = [await lease.__aenter__() for lease in leases]
        for lease in leases:
            await lease.__aexit__(None, None, None)
        busy = len(pool._here().idle)
        for _ in range(3):
            moment[0] += 30
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        quiet = len(pool._here().idle)
        closed = sum(conn.is_closed() for conn in conns)
        await pool.close()
        return busy, quiet, closed

    busy, quiet, closed = asyncio.run(scenario())
    assert (busy, quiet, closed) == (4, 1, 3)  # the one in use stays, the other three closed


def test_a_node_the_server_has_no_room_for_is_refused_in_one_line(database_url: str) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "--workers", "40", "--database-url", database_url, "--no-migrate"]
    )
    assert result.exit_code == 1, result.output
    line = result.output.strip().splitlines()[-1]
    assert "may open 440 PostgreSQL connections" in line, line
    assert "AITBC_DB_POOL_SIZE" in line and "max_connections" in line, line
