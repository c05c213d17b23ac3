"""SQLite writers in one process take turns in the order they asked (store.write_gate): an
ORM write transaction is not starved by the request path's writer committing back to back."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy.engine import make_url

from aitbc.store.conn import Conn
from aitbc.store.store import Store
from aitbc.store.write_gate import WriteGate, gate_for
from tests.support import store as support_store
from tests.support.api import PG_URL


def _until(condition: object, what: str) -> None:
    """Wait (briefly, polling) for another thread to reach a state."""
    deadline = time.monotonic() + 10
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_waiters_are_served_in_the_order_they_asked() -> None:
    gate, order = WriteGate(timeout=10), []
    gate.acquire()

    def writer(name: str) -> None:
        gate.acquire()
        order.append(name)
        gate.release()

    threads = []
    for name in ("first", "second", "third"):
        thread = threading.Thread(target=writer, args=(name,))
        thread.start()
        threads.append(thread)
        _until(lambda n=len(threads): gate.waiting == n, f"{name} to queue")
    gate.release()
    for thread in threads:
        thread.join(10)
    assert order == ["first", "second", "third"]
    gate.acquire()  # free again once the last one gave it back
    gate.release()


def test_a_writer_that_waits_past_the_timeout_fails_as_sqlite_would() -> None:
    gate = WriteGate(timeout=0)
    gate.acquire()
    failed: list[BaseException] = []

    def writer() -> None:
        try:
            gate.acquire()
        except sqlite3.OperationalError as exc:
            failed.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(10)
    assert [str(e) for e in failed] == ["database is locked"]
    assert gate.waiting == 0
    gate.release()
    gate.acquire()  # nobody is left holding or waiting
    gate.release()


def test_another_writer_goes_before_the_request_paths_later_writes(database_url: str) -> None:
    """A: the request path's writer holds the lock. B: another store's writer in the same
    process (a tool, the start's bootstrap) asks for it. C: another request-path write is
    queued behind A on the same writer thread. Without turns, C would start the moment A
    commits, while B's connection sleeps between tries; with them, B goes first."""
    if PG_URL:
        pytest.skip("SQLite's write lock")
    path = make_url(database_url).database or ""
    gate = gate_for(path)
    store = Store(database_url)
    order: list[str] = []
    a_holds, a_may_finish = threading.Event(), threading.Event()

    async def b(conn: Conn) -> None:
        order.append("B")

    def other_writer() -> None:
        support_store.write(database_url, b)

    async def scenario() -> None:
        await store.open()

        async def a(conn: Conn) -> None:
            order.append("A")
            a_holds.set()
            a_may_finish.wait(10)

        async def c(conn: Conn) -> None:
            order.append("C")

        first = asyncio.ensure_future(store.write(a))
        await asyncio.to_thread(a_holds.wait, 10)
        other = threading.Thread(target=other_writer)
        other.start()
        await asyncio.to_thread(_until, lambda: gate.waiting == 1, "B to queue")
        third = asyncio.ensure_future(store.write(c))
        await asyncio.sleep(0)  # C is handed to the writer thread, behind A
        a_may_finish.set()
        await first
        await third
        await asyncio.to_thread(other.join, 10)
        await store.close()

    asyncio.run(scenario())
    assert order == ["A", "B", "C"]
