"""One SQLite writer at a time per database file in this process, served in the order asked.

SQLite has one write lock per file and no queue for it: a connection that finds it taken
sleeps and tries again (1, 2, 5 ... 100 ms apart). The request path's writer thread
(``store.Store``) commits bookings back to back, so a write transaction on another
connection of the same process (another store's: a tool, the start's bootstrap, a test)
could find the lock taken at every try and wait seconds while the bookings behind it went
through. Every writer takes this gate before ``BEGIN IMMEDIATE`` and gives it up when its
transaction ends, so a writer waits for at most the writers that asked before it. (Separate
processes still meet only at SQLite's own lock.)"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from pathlib import Path

SQLITE_BUSY_TIMEOUT_MS = 30_000
_GATES: dict[str, WriteGate] = {}
_GATES_LOCK = threading.Lock()


class WriteGate:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._lock = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Lock] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def acquire(self) -> None:
        """Wait for the gate, behind those already waiting; after the timeout, fail as
        SQLite would ("database is locked")."""
        with self._lock:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        if turn.acquire(timeout=self._timeout):
            return  # handed over by release(): the gate is ours
        with self._lock:
            if turn in self._waiting:
                self._waiting.remove(turn)
                raise sqlite3.OperationalError("database is locked")
        # Handed over between the timeout and the lock above: ours after all.

    def release(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().release()  # the next in line holds it now
            else:
                self._held = False


def gate_for(path: str) -> WriteGate:
    """The gate of one database file (the same for every connection to it), waited on for
    as long as SQLite's own busy timeout."""
    key = str(Path(path).resolve())
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = WriteGate(SQLITE_BUSY_TIMEOUT_MS / 1000)
        return gate
