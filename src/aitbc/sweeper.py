"""The periodic work of every server process: settle bookings whose time is up, expire and
assign jobs, fill bids, recompute stale prices, delist the GPUs of miners that left once they
are free, refresh uptime (every minute) and (hourly) keep the price history and the presence
stretches bounded.

Each item is its own short transaction on the store and takes its rows with SKIP LOCKED, so
any number of processes can sweep at once and each booking is still settled exactly once
(see bookings.settlement). The chores that need doing once per interval, not once per
process (refreshing uptime, pruning, the scan for stale prices), are leased: the process
that moves the chore's ``done_at`` on (table ``chores``) does it, the others skip it until
it is due again. The sweep runs as a task on the server's event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from aitbc.accounts import alerts
from aitbc.bids import service as bids
from aitbc.bookings import announce as booking_events
from aitbc.bookings.settlement import settle_due
from aitbc.config import Settings
from aitbc.events import feed
from aitbc.jobs import service as jobs
from aitbc.kit import tasks
from aitbc.kit.clock import Clock
from aitbc.miners import announce as miner_events
from aitbc.miners import presence, upkeep
from aitbc.miners.service import delist_free_gpus
from aitbc.offers import service as offers
from aitbc.pricing.market import prune_history, recompute_if_stale, stale_models
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.store import Store
from aitbc.store.values import as_time
from aitbc.webhooks import service as webhooks

log = logging.getLogger("aitbc.sweeper")
# The chore is due ($3: its last time allowed) and this process takes it by moving it on.
_TAKE_CHORE = Query(
    "INSERT INTO chores (name, done_at) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE "
    "SET done_at = excluded.done_at WHERE chores.done_at <= $3 RETURNING name"
)
_DONE_AT = Query("SELECT done_at FROM chores WHERE name = $1")
# Another process at the chore right now: skip it rather than wait for its row.
_CHORE_LOCK = Query.postgresql_only(
    "SELECT pg_try_advisory_xact_lock(1634301026, hashtext($1))"  # 'aitb', the chore
)
SETTLE_BATCH = 500
PRUNE_EVERY = timedelta(hours=1)
UPTIME_EVERY = timedelta(minutes=1)
T = TypeVar("T")
Find = Callable[[Conn, datetime], Awaitable[Iterable[T]]]
Act = Callable[[Conn, T, datetime], Awaitable[Any]]


class Sweeper:
    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._interval = settings.sweep_interval_seconds
        self._next_due: dict[str, datetime] = {}
        self._open_bids = bids.open_bids()
        self._queued_jobs = jobs.queued_rounds()
        self._task: asyncio.Task[None] | None = None

    async def _each(self, find: Find[T], act: Act[T]) -> int:
        """One short write transaction per item, so no sweep holds many GPUs' or accounts'
        locks at once, and one item failing leaves the others done. Returns the sum of what
        the items' actions counted."""
        async with self._store.read() as conn:
            items = list(await find(conn, self._clock.now()))
        done = 0
        for item in items:

            async def work(conn: Conn, item: T = item) -> Any:
                return await act(conn, item, self._clock.now())

            try:
                done += int(await self._store.write(work) or 0)
            except Exception:  # retried on the next tick
                log.exception("sweeping %r failed", item)
        return done

    async def _settle(self) -> int:
        """Settle due bookings in batches, one short transaction each, until a batch comes
        back short (what is left is held by requests, which settle it themselves)."""
        settings, settled = self._settings, 0
        while True:
            try:
                done = await self._store.write(
                    partial(
                        settle_due,
                        now=self._clock.now(),
                        fee_bps=settings.platform_fee_bps,
                        policy=settings.outage_policy,
                        limit=SETTLE_BATCH,
                    )
                )
            except Exception:  # retried on the next tick
                log.exception("settling due bookings failed")
                return settled
            settled += done
            if done < SETTLE_BATCH:
                return settled

    async def sweep(self) -> int:
        """Settle due bookings; expire, assign and fill jobs and bids; recompute stale
        prices; announce silent miners and bookings ending soon; prune the price history and the
        event log. Returns how many bookings it settled."""
        settings = self._settings
        timeout = settings.heartbeat_timeout_seconds
        # Claims that ran out unconfirmed first: their jobs go back to waiting, and a booking
        # that ran out meanwhile then ends as unserved rather than as having run its job.
        await self._each(
            lambda c, now: jobs.expired_claims(c, now=now),
            lambda c, job_id, now: jobs.release_claim(c, job_id=job_id, now=now),
        )
        settled = await self._settle()

        async def once(_conn: Conn, _now: datetime) -> list[str]:
            return ["once"]

        await self._each(
            lambda c, now: jobs.jobs_to_expire(c, now=now),
            lambda c, job_id, now: jobs.expire_one(c, job_id=job_id, now=now, settings=settings),
        )
        await self._each(
            lambda c, now: jobs.unreported_jobs(c, now=now, settings=settings),
            lambda c, job_id, now: jobs.fail_unreported(
                c, job_id=job_id, now=now, settings=settings
            ),
        )
        await self._each(
            lambda c, now: self._queued_jobs(c, now=now),
            lambda c, job_id, now: jobs.assign_one(c, job_id=job_id, now=now, settings=settings),
        )
        await self._each(once, lambda c, _, now: bids.expire_old(c, now=now))
        await self._each(
            lambda c, now: self._open_bids(c, now=now),
            lambda c, bid_id, now: bids.fill_one(c, bid_id=bid_id, now=now, settings=settings),
        )
        if await self._store.write(
            partial(self._take, "scanning for stale prices", timedelta(seconds=self._interval))
        ):
            await self._each(
                lambda c, now: stale_models(c, now=now, settings=settings),
                lambda c, model, now: recompute_if_stale(
                    c, kind=model[0], key=model[1], now=now, settings=settings
                ),
            )
        await self._each(
            lambda c, now: upkeep.leavers(c),
            lambda c, miner_id, now: delist_free_gpus(c, miner_id=miner_id, now=now),
        )
        await self._each(
            once, lambda c, _, now: offers.close_silent(c, now=now, heartbeat_timeout=timeout)
        )
        await self._each(
            once, lambda c, _, now: miner_events.gone_silent(c, now=now, timeout=timeout)
        )
        await self._each(once, lambda c, _, now: alerts.announce_low(c, now=now))
        ending = timedelta(minutes=settings.events_ending_soon_minutes)
        await self._each(
            once,
            lambda c, _, now: booking_events.ending_soon(
                c, now=now, within=ending, policy=settings.outage_policy
            ),
        )
        await self._now_and_then(
            "refreshing uptime",
            UPTIME_EVERY,
            lambda conn, now: upkeep.refresh_uptime(conn, now=now, timeout=timeout),
        )
        await self._now_and_then("pruning the price history", PRUNE_EVERY, prune_history)
        await self._now_and_then("pruning presence stretches", PRUNE_EVERY, presence.prune)
        retention = timedelta(days=settings.events_retention_days)
        await self._now_and_then(
            "pruning events",
            PRUNE_EVERY,
            lambda conn, now: feed.prune(conn, now=now, retention=retention),
        )
        await self._now_and_then(
            "pruning webhook deliveries",
            PRUNE_EVERY,
            lambda conn, now: webhooks.prune_log(conn, now=now, retention=retention),
        )
        return settled

    async def _take(self, what: str, every: timedelta, conn: Conn) -> bool:
        """Whether this process does the chore now: it is due (not done by any process for
        ``every``), and no other process is at it. Taken in ``conn``'s transaction, so a
        chore that fails there is due again at once."""
        now = self._clock.now()
        if now < self._next_due.get(what, now):
            return False  # known to have been done lately
        if conn.dialect == "postgresql" and not await conn.fetchval(_CHORE_LOCK, what):
            self._next_due[what] = now + every
            return False
        if await conn.fetchval(_TAKE_CHORE, what, now, now - every) is None:
            done_at = await conn.fetchval(_DONE_AT, what)
            self._next_due[what] = as_time(done_at) + every
            return False
        self._next_due[what] = now + every
        return True

    async def _now_and_then(
        self, what: str, every: timedelta, work: Callable[..., Awaitable[object]]
    ) -> None:
        """``work(conn, now=...)`` in its own transaction, at most once per ``every`` of the
        clock across all processes (a failure is retried on the next tick)."""

        async def run(conn: Conn) -> object:
            if not await self._take(what, every, conn):
                return None
            return await work(conn, now=self._clock.now())

        try:
            await self._store.write(run)
        except Exception:
            self._next_due.pop(what, None)
            log.exception("%s failed", what)

    def run_once(self) -> int:
        """One sweep, from a thread with no event loop running (tests, tools); returns how
        many bookings it settled."""

        async def sweep_and_leave() -> int:
            try:
                return await self.sweep()
            finally:
                await self._store.leave_loop()

        return asyncio.run(sweep_and_leave())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except Exception:  # a failed sweep is retried on the next tick
                log.exception("sweep failed")

    def start(self) -> None:
        """Sweep every interval on the running event loop, until ``stop``."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await tasks.cancel(self._task)
        self._task = None
