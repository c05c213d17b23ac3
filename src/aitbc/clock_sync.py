"""Keeping a node on the database's clock (PostgreSQL): every ``clock_check_seconds`` it reads
the database's ``clock_timestamp()`` and moves its ``DatabaseClock`` by the difference, so
that a booking made on one node and released on another is charged the seconds that passed,
whatever the nodes' own clocks say. A node on SQLite is the database's host: its clock is
the database's."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from aitbc.kit.clock import DatabaseClock
from aitbc.store.query import Query
from aitbc.store.store import Store
from aitbc.store.values import as_time

log = logging.getLogger("aitbc.clock")

_DATABASE_TIME = Query.postgresql_only("SELECT clock_timestamp()")


async def step(store: Store, clock: DatabaseClock, *, warn_beyond: float) -> timedelta:
    """Read the database's time once and set the clock's offset; the offset."""
    sent = clock.local()
    (database_time,) = (await store.fetch_values(_DATABASE_TIME))[0]
    received = clock.local()
    offset = clock.step(sent, as_time(database_time), received)
    if abs(offset.total_seconds()) > warn_beyond:
        log.warning(
            "this host's clock is %+.3f s off the database's; money and presence go by the "
            "database's",
            -offset.total_seconds(),
        )
    return offset


async def keep_in_step(
    store: Store, clock: DatabaseClock, *, every: float, warn_beyond: float
) -> None:
    """``step`` every ``every`` seconds, for as long as the process serves (a failed read
    keeps the last offset)."""
    while True:
        try:
            await step(store, clock, warn_beyond=warn_beyond)
        except Exception as exc:
            log.warning("cannot read the database's clock (%s); keeping the last offset", exc)
        await asyncio.sleep(every)
