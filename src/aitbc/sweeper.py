"""The periodic settlement of bookings whose time is up, and recomputation of stale prices.
Every server process runs one; settlement is exactly-once however many run at the same time
(see bookings.lifecycle)."""

from __future__ import annotations

import logging
import threading

from aitbc.bids import service as bids
from aitbc.bookings.lifecycle import sweep
from aitbc.config import Settings
from aitbc.db import Database
from aitbc.jobs import service as jobs
from aitbc.kit.clock import Clock
from aitbc.pricing.market import recompute_due

log = logging.getLogger("aitbc.sweeper")


class Sweeper:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._interval = settings.sweep_interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aitbc-sweeper", daemon=True)

    def run_once(self) -> int:
        """Settle due bookings; expire, assign and fill jobs and bids; recompute stale
        model prices. Three transactions, so one failing leaves the others done."""
        with self._db.session(write=True) as session:
            settled = sweep(session, now=self._clock.now(), fee_bps=self._settings.platform_fee_bps)
            session.commit()
        with self._db.session(write=True) as session:
            now = self._clock.now()
            jobs.expire_due(session, now=now, settings=self._settings)
            jobs.assign_queued(session, now=now, settings=self._settings)
            bids.fill_open(session, now=now, settings=self._settings)
            session.commit()
        with self._db.session(write=True) as session:
            recompute_due(session, now=self._clock.now(), settings=self._settings)
            session.commit()
        return settled

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
