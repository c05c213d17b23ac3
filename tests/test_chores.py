"""The sweepers' periodic chores (refreshing uptime, pruning, the scan for stale prices) are
done once per interval by the whole cluster, not once by every process."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from aitbc.config import Settings
from aitbc.kit.clock import ManualClock
from aitbc.store.conn import Conn
from aitbc.store.store import Store
from aitbc.sweeper import Sweeper

MINUTE = timedelta(minutes=1)


def test_a_chore_is_done_once_per_interval_whichever_processes_sweep(
    database_url: str, settings: Settings, clock: ManualClock
) -> None:
    done: list[datetime] = []
    failing: list[bool] = []  # popped: the last first

    async def chore(conn: Conn, now: datetime) -> None:
        done.append(now)

    async def flaky(conn: Conn, now: datetime) -> None:
        if failing.pop():
            raise RuntimeError("the database went away")
        done.append(now)

    async def scenario() -> list[int]:
        store = Store(database_url)
        await store.open()
        try:
            counts = []
            # Three processes' sweepers, twice each, then again a minute later.
            for _ in range(2):
                sweepers = [Sweeper(store, clock, settings) for _ in range(3)]
                for _ in range(2):
                    for sweeper in sweepers:
                        await sweeper._now_and_then("a chore", MINUTE, chore)
                counts.append(len(done))
                clock.advance(seconds=61)
            # A chore that fails is due again at once, for any process.
            done.clear()
            first, second = Sweeper(store, clock, settings), Sweeper(store, clock, settings)
            failing.extend([False, True])  # the first run fails, the next one works
            await first._now_and_then("a flaky chore", MINUTE, flaky)
            await second._now_and_then("a flaky chore", MINUTE, flaky)
            counts.append(len(done))
            return counts
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [1, 2, 1]
