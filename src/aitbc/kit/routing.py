"""An APIRouter whose plain (sync) endpoints run as one thread-pool call inside an async
wrapper, so FastAPI validates and serialises their responses on the event loop.

Why: a write request takes its database locks inside the endpoint and releases them when
its session ends, after the response is serialised. Serialising a sync endpoint's response
would need a second thread from the pool; with every pool thread busy in requests waiting
for those very locks, the holder could never finish."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import fastapi
from starlette.concurrency import run_in_threadpool


def in_thread(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(func, *args, **kwargs)

    return wrapper


class APIRouter(fastapi.APIRouter):
    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = in_thread(endpoint)
        super().add_api_route(path, endpoint, **kwargs)
