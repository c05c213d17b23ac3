from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

import asyncpg
from fastapi import Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from aitbc.config import Settings
from aitbc.gpus.query import count_by_status, vitals
from aitbc.http import metrics
from aitbc.http.errors import error_responses
from aitbc.http.routing import APIRouter
from aitbc.store.query import Query
from aitbc.store.store import Store

router = APIRouter(tags=["operations"])

_PING = Query("SELECT 1")
# How this process hears that a job was assigned to a waiting poll (jobs.wakeup): "local"
# (SQLite, one host), "listening" (PostgreSQL LISTEN), "reconnecting" (the listening
# connection is lost: polls wait out their time until it is back), "off" (behind a pooler
# with no direct connection to listen on: polls wait out their time).
_HEALTHY = {
    (name, wakeups): b'{"status":"ok","database":"%s","job_wakeups":"%s"}'
    % (name.encode(), wakeups.encode())
    for name, wakeups in (
        ("sqlite", "local"),
        ("postgresql", "listening"),
        ("postgresql", "reconnecting"),
        ("postgresql", "off"),
    )
}


_DRAINING = b'{"error":"draining","detail":"This node is shutting down; send requests to another."}'
_UNREACHABLE = (
    b'{"error":"database_unavailable","detail":"The database is unreachable or does not '
    b'answer; retry in a few seconds."}'
)


class Live(BaseModel):
    status: str


class Health(BaseModel):
    status: str
    database: str
    job_wakeups: Literal["local", "listening", "reconnecting", "off"] = Field(
        description="How waiting polls hear of their jobs: local (SQLite), listening "
        "(PostgreSQL LISTEN), reconnecting (the LISTEN connection was lost and is being made "
        "again; polls find their jobs when their wait runs out meanwhile), off (behind a "
        "pooler with no listen URL: the same, for good)"
    )


@router.get(
    "/health",
    response_model=Health,
    responses=error_responses(503),
    summary="Health with a database round trip, bounded by the health timeout",
)
@router.get(
    "/v1/health",
    response_model=Health,
    responses=error_responses(503),
    summary="The same, where the deployed miner daemons look for it",
)
@router.get(
    "/health/ready",
    response_model=Health,
    responses=error_responses(503),
    summary="Readiness: the database answers within the health timeout, and the node is not "
    "shutting down (503 draining from SIGTERM on; for load balancers)",
)
async def health(request: Request) -> Response:
    state = request.app.state
    if state.draining and request.url.path == "/health/ready":
        return Response(_DRAINING, 503, media_type="application/json")
    store: Store = state.store
    try:
        async with asyncio.timeout(state.settings.health_timeout_seconds):
            await store.fetchrow(_PING)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return Response(_UNREACHABLE, 503, {"Retry-After": "5"}, "application/json")
    if store.dialect == "sqlite":
        wakeups = "local"
    elif not store.can_listen:
        wakeups = "off"
    else:
        wakeups = "listening" if state.signals.listening else "reconnecting"
    return Response(_HEALTHY[(store.dialect, wakeups)], media_type="application/json")


@router.get(
    "/health/live",
    response_model=Live,
    summary="Liveness: the process answers, whatever its database does",
)
async def live() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {metrics.CONTENT_TYPE: {}}}},
    summary="Prometheus metrics",
)
async def prometheus_metrics(request: Request) -> Response:
    """This node's request figures, and the registry's (the same from every node, read at
    most once per ``metrics_interval_seconds`` by each process). Bounded by the database
    timeout: a scrape of a node whose database does not answer is a 503 in time, not a hung
    scrape."""
    state = request.app.state
    try:
        async with asyncio.timeout(state.settings.db_timeout_seconds):
            registry = await _registry_figures(state)
    except TimeoutError:
        return Response(_UNREACHABLE, 503, {"Retry-After": "5"}, "application/json")
    # Built off the event loop: with many workers the exposition reads their files.
    process = await run_in_threadpool(metrics.render_process)
    return Response(process + registry, media_type=metrics.CONTENT_TYPE)


async def _registry_figures(state: Any) -> bytes:
    now: datetime = state.clock.now()
    settings: Settings = state.settings
    cached: tuple[datetime, bytes] | None = state.registry_metrics
    if cached is not None and cached[0] <= now < cached[0] + settings.metrics_interval:
        return cached[1]
    timeout = settings.heartbeat_timeout_seconds
    async with state.store.read() as conn:
        counts = await count_by_status(conn, now=now, heartbeat_timeout=timeout)
        found = await vitals(conn, now=now, heartbeat_timeout=timeout)
    # Tens of thousands of GPUs' lines: built off the event loop.
    body: bytes = await run_in_threadpool(metrics.render_registry, counts, found)
    state.registry_metrics = (now, body)
    return body
