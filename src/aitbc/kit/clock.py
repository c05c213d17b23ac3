"""One injectable source of "now", so expiry and billing are testable without sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class DatabaseClock:
    """The database's time, told by this host's clock: ``now()`` is the local time moved by
    the offset last measured against the database (``step``). Every node of a cluster then
    bills and judges presence by one clock, the database's, whatever its own says; between
    measurements a node's drift is all it can be off by."""

    def __init__(self, local: Callable[[], datetime] | None = None) -> None:
        self._local = local or SystemClock().now
        self.offset = timedelta(0)

    def local(self) -> datetime:
        return self._local()

    def now(self) -> datetime:
        return self._local() + self.offset

    def step(self, sent: datetime, database_time: datetime, received: datetime) -> timedelta:
        """Take the database's time as read between ``sent`` and ``received`` (local times):
        it stood at the middle of the round trip. Returns the new offset."""
        self.offset = database_time - (sent + (received - sent) / 2)
        return self.offset


class ManualClock:
    """A clock that only moves when told to; used by tests and simulations."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


def hours_from_seconds(seconds: int) -> Decimal:
    """A duration as the API shows it: hours with six decimals."""
    return (Decimal(seconds) / 3600).quantize(Decimal("0.000001"))
