"""The periodic settlement of bookings whose time is up. Every server process runs one;
settlement is exactly-once however many run at the same time (see bookings.lifecycle)."""

from __future__ import annotations

import logging
import threading

from aitbc.bookings.lifecycle import sweep
from aitbc.db import Database
from aitbc.kit.clock import Clock

log = logging.getLogger("aitbc.sweeper")


class Sweeper:
    def __init__(self, db: Database, clock: Clock, *, interval: float, fee_bps: int) -> None:
        self._db = db
        self._clock = clock
        self._interval = interval
        self._fee_bps = fee_bps
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aitbc-sweeper", daemon=True)

    def run_once(self) -> int:
        with self._db.session(write=True) as session:
            settled = sweep(session, now=self._clock.now(), fee_bps=self._fee_bps)
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
