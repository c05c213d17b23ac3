"""Calls released together by a barrier, each in its own thread: the race tests' one way of
making requests meet in the server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import httpx

T = TypeVar("T")


def all_at_once(calls: list[Callable[[], T]], timeout: float = 120) -> list[T]:
    """Run every call in its own thread, all released at once; their results in order. A call
    that raises or never finishes fails the test."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)
    done = [False] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
            done[i] = True
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a call never finished"
    failures = [r for r, finished in zip(results, done, strict=True) if not finished]
    assert not failures, failures
    return results  # type: ignore[return-value]


def each_with_a_client(
    base_url: str, calls: list[Callable[[httpx.Client], T]], timeout: float = 120
) -> list[T]:
    """``all_at_once`` where every call gets its own HTTP connection, opened beforehand."""
    clients = [httpx.Client(base_url=base_url, timeout=60) for _ in calls]
    try:
        return all_at_once(
            [partial(call, c) for c, call in zip(clients, calls, strict=True)], timeout
        )
    finally:
        for client in clients:
            client.close()
