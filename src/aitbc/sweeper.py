"""The periodic work of every server process: settle bookings whose time is up, expire and
assign jobs, fill bids, recompute stale prices, delist the GPUs of miners that left once they
are free, refresh uptime (every minute) and (hourly) keep the price history and the presence
stretches bounded.
Each item is its own short transaction and takes its rows with SKIP LOCKED, so any number of
processes can sweep at once and each booking is still settled exactly once (see
bookings.settlement)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from aitbc.bids import service as bids
from aitbc.bookings.settlement import settle_due
from aitbc.config import Settings
from aitbc.db import Database
from aitbc.jobs import service as jobs
from aitbc.kit.clock import Clock
from aitbc.miners import presence, upkeep
from aitbc.miners.service import delist_free_gpus
from aitbc.offers import service as offers
from aitbc.pricing.market import prune_history, recompute_if_stale, stale_models
from aitbc.store.conn import SessionConn, drive

log = logging.getLogger("aitbc.sweeper")
SETTLE_BATCH = 500
PRUNE_EVERY = timedelta(hours=1)
UPTIME_EVERY = timedelta(minutes=1)
T = TypeVar("T")


class Sweeper:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._interval = settings.sweep_interval_seconds
        self._last_done: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aitbc-sweeper", daemon=True)

    def _each(
        self,
        find: Callable[[Session, datetime], Iterable[T]],
        act: Callable[[Session, T, datetime], int | bool | None],
    ) -> int:
        """One short write transaction per item, so no sweep holds many GPUs' or accounts'
        locks at once, and one item failing leaves the others done. Returns the sum of what
        the items' actions counted."""
        with self._db.session(write=False) as session:
            items = list(find(session, self._clock.now()))
        done = 0
        for item in items:
            try:
                with self._db.session(write=True) as session:
                    done += int(act(session, item, self._clock.now()) or 0)
                    session.commit()
            except Exception:  # retried on the next tick
                log.exception("sweeping %r failed", item)
        return done

    def _settle(self, fee_bps: int) -> int:
        """Settle due bookings in batches, one short transaction each, until a batch comes
        back short (what is left is held by requests, which settle it themselves)."""
        settled = 0
        while True:
            try:
                with self._db.session(write=True) as session:
                    done = drive(
                        settle_due(
                            SessionConn(session),
                            now=self._clock.now(),
                            fee_bps=fee_bps,
                            policy=self._settings.outage_policy,
                            limit=SETTLE_BATCH,
                        )
                    )
                    session.commit()
            except Exception:  # retried on the next tick
                log.exception("settling due bookings failed")
                return settled
            settled += done
            if done < SETTLE_BATCH:
                return settled

    def run_once(self) -> int:
        """Settle due bookings; expire, assign and fill jobs and bids; recompute stale
        prices; prune the price history. Returns how many bookings it settled."""
        settings, fee = self._settings, self._settings.platform_fee_bps
        settled = self._settle(fee)
        self._each(
            lambda s, now: jobs.jobs_to_expire(s, now=now),
            lambda s, job_id, now: jobs.expire_one(s, job_id=job_id, now=now, settings=settings),
        )
        self._each(
            lambda s, now: jobs.expired_claims(s, now=now),
            lambda s, job_id, now: jobs.release_claim(s, job_id=job_id, now=now),
        )
        self._each(
            lambda s, now: jobs.queued_jobs(s, now=now),
            lambda s, job_id, now: jobs.assign_one(s, job_id=job_id, now=now, settings=settings),
        )
        self._each(
            lambda s, now: ["expire bids"],
            lambda s, _, now: drive(bids.expire_old(SessionConn(s), now=now)),
        )
        self._each(
            lambda s, now: drive(bids.open_bids(SessionConn(s), now=now)),
            lambda s, bid_id, now: drive(
                bids.fill_one(SessionConn(s), bid_id=bid_id, now=now, settings=settings)
            ),
        )
        self._each(
            lambda s, now: drive(stale_models(SessionConn(s), now=now, settings=settings)),
            lambda s, model, now: drive(
                recompute_if_stale(
                    SessionConn(s), kind=model[0], key=model[1], now=now, settings=settings
                )
            ),
        )
        self._each(
            lambda s, now: drive(upkeep.leavers(SessionConn(s))),
            lambda s, miner_id, now: drive(
                delist_free_gpus(SessionConn(s), miner_id=miner_id, now=now)
            ),
        )
        self._each(
            lambda s, now: ["close silent offers"],
            lambda s, _, now: drive(
                offers.close_silent(
                    SessionConn(s), now=now, heartbeat_timeout=settings.heartbeat_timeout_seconds
                )
            ),
        )
        self._refresh_uptime()
        self._prune()
        return settled

    def _refresh_uptime(self) -> None:
        timeout = self._settings.heartbeat_timeout_seconds
        self._now_and_then(
            "refreshing uptime",
            UPTIME_EVERY,
            lambda conn, now: upkeep.refresh_uptime(conn, now=now, timeout=timeout),
        )

    def _prune(self) -> None:
        self._now_and_then("pruning the price history", PRUNE_EVERY, prune_history)
        self._now_and_then("pruning presence stretches", PRUNE_EVERY, presence.prune)

    def _now_and_then(
        self,
        what: str,
        every: timedelta,
        work: Callable[..., Coroutine[Any, Any, object]],
    ) -> None:
        """``work(conn, now=...)`` in its own transaction, at most once per ``every`` of the
        clock (a failure is retried on the next tick)."""
        now = self._clock.now()
        last = self._last_done.get(what)
        if last is not None and now - last < every:
            return
        try:
            with self._db.session(write=True) as session:
                drive(work(SessionConn(session), now=now))
                session.commit()
            self._last_done[what] = now
        except Exception:
            log.exception("%s failed", what)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.run_once()
            except Exception:  # a failed sweep is retried on the next tick
                log.exception("sweep failed")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
