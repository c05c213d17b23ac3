"""The application factory: routers, middleware, error handlers and lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI

from aitbc import clock_sync
from aitbc.accounts.router import router as accounts_router
from aitbc.auth.principal import Authenticator
from aitbc.auth.router import router as auth_router
from aitbc.bids.router import router as bids_router
from aitbc.bookings import riders
from aitbc.bookings.busy import BusyGpus
from aitbc.bookings.router import gang_router
from aitbc.bookings.router import gpu_router as booking_gpu_router
from aitbc.bookings.router import market_router as booking_market_router
from aitbc.bookings.router import router as bookings_router
from aitbc.config import Settings
from aitbc.dispatcher import Dispatcher
from aitbc.events.router import router as events_router
from aitbc.gpus.cards import Cards
from aitbc.gpus.model_keys import ModelKeys
from aitbc.gpus.router import gpu_details, list_gpus
from aitbc.gpus.router import router as gpus_router
from aitbc.http import openapi_doc
from aitbc.http.context import Context
from aitbc.http.direct import DirectReads
from aitbc.http.docs_ui import install_docs
from aitbc.http.errors import install_error_handlers
from aitbc.http.guard import RequestGuard
from aitbc.http.health import health
from aitbc.http.health import router as health_router
from aitbc.http.metrics import MetricsMiddleware
from aitbc.http.routing import include_flat
from aitbc.jobs import wakeup
from aitbc.jobs.riders import JobsOnBookings
from aitbc.jobs.router import router as jobs_router
from aitbc.kit import tasks
from aitbc.kit.clock import Clock, DatabaseClock, SystemClock
from aitbc.miners.router import router as miners_router
from aitbc.offers.router import router as offers_router
from aitbc.orders.router import router as orders_router
from aitbc.pricing.router import router as pricing_router
from aitbc.reviews.router import router as reviews_router
from aitbc.store import outbox, outgoing
from aitbc.store.signals import Signals
from aitbc.store.store import Store
from aitbc.sweeper import Sweeper
from aitbc.web import router as web
from aitbc.webhooks import router as webhooks

DESCRIPTION = """
The GPU marketplace coordinator: miners list GPUs; clients find, book, pay for, release
and review them.

Authenticate with the `X-Api-Key` header. An empty or absent key is anonymous and may read
public data. Every error is `{"error": "<machine_code>", "detail": "<sentence>"}`.
"""


log = logging.getLogger("aitbc.server")


def drain(app: FastAPI) -> None:
    """The node is going away: readiness turns 503 (the balancer sends no more), and every
    waiting long poll answers now (204) instead of holding the shutdown for its wait."""
    app.state.draining = True
    signals = getattr(app.state, "signals", None)
    if signals is not None:
        signals.wake_all()


def _drain_on_signals(app: FastAPI) -> None:
    """Drain on SIGTERM and SIGINT, then let the server's own handler (uvicorn's: stop
    taking connections, let those in flight finish within the grace) do the rest. Only a
    process's main thread can handle signals: an app served from another (a test's client)
    is drained by calling ``drain``."""
    if threading.current_thread() is not threading.main_thread():
        return
    for caught in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(caught)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            drain(app)
            if callable(previous):
                previous(signum, frame)
            else:  # no server's handler: the signal's own action
                signal.signal(signum, previous)
                signal.raise_signal(signum)

        signal.signal(caught, handler)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    riders.serve(JobsOnBookings())  # what becomes of a job whose booking ends early

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One set of resources per application, however many servers run it at once (a
        # test may serve it through a TestClient and a real server together).
        state = app.state
        state.serving = getattr(state, "serving", 0) + 1
        if state.serving == 1:
            anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
            state.store = Store(
                settings.resolved_database_url(),
                pool_size=settings.db_pool_size,
                idle_seconds=settings.db_idle_seconds,
                pooler=settings.db_pooler,
                listen_url=settings.listen_database_url,
                timeout=settings.db_timeout_seconds,
            )
            await state.store.open()
            state.authenticator = Authenticator(state.store, admin_key=settings.admin_key)
            state.signals = Signals()
            state.listening = None
            if state.store.is_postgres and not state.store.can_listen:
                log.warning(
                    "behind a pooler with no AITBC_LISTEN_DATABASE_URL: long polls find their "
                    "jobs when their wait runs out"
                )
            elif state.store.is_postgres:
                # In the background: a database that does not answer must not hold the
                # start (its polls find their jobs when their wait runs out meanwhile).
                state.listening = asyncio.create_task(state.signals.listen(state.store.connect_raw))
            else:
                state.store.listen_locally(wakeup.CHANNEL, state.signals.wake)
                state.store.listen_locally(outgoing.CHANNEL, state.signals.events_written)
            state.stepping = None
            if isinstance(state.clock, DatabaseClock):
                state.stepping = asyncio.create_task(
                    clock_sync.keep_in_step(
                        state.store,
                        state.clock,
                        every=settings.clock_check_seconds,
                        warn_beyond=settings.clock_skew_warning_seconds,
                    )
                )
            # Events left unnumbered by a writer that found another process numbering.
            state.numbering = None
            if state.store.numbering is not None:
                state.numbering = asyncio.create_task(
                    outbox.keep_numbering(state.store, state.store.numbering)
                )
            _drain_on_signals(app)
            state.sweeper = Sweeper(state.store, state.clock, settings)
            state.dispatcher = Dispatcher(state.store, state.clock, settings)
            if settings.sweep_interval_seconds > 0:
                state.sweeper.start()
                state.dispatcher.start(state.signals)
        try:
            yield
        finally:
            state.serving -= 1
            if state.serving == 0:
                await state.sweeper.stop()
                await state.dispatcher.stop()
                for task in (state.listening, state.stepping, state.numbering):
                    await tasks.cancel(task)
                await state.signals.close()
                await state.store.close()
            else:
                await state.store.leave_loop()

    app = FastAPI(
        title="AITBC GPU marketplace coordinator",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # The service exports its own Prometheus metrics and logs; FastAPI's OpenTelemetry
        # hooks would only ask, on every request, whether a provider has been set up.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_docs(app)
    openapi_doc.install(app)
    app.state.settings = settings
    app.state.draining = False
    app.state.registry_metrics = None  # (when read, the exposition): http.health
    app.state.context = Context(app.state)
    # On PostgreSQL every node goes by the database's clock (clock_sync); SQLite's host is
    # this one.
    postgres = settings.resolved_database_url().startswith("postgresql")
    app.state.clock = clock or (DatabaseClock() if postgres else SystemClock())
    app.state.gpu_cards = Cards()
    app.state.model_keys = ModelKeys()
    app.state.busy_gpus = BusyGpus()
    install_error_handlers(app)
    # Innermost: the GPU list and details and the health check go straight to their
    # endpoint (http.direct).
    app.add_middleware(DirectReads, owner=app, endpoints=(list_gpus, gpu_details, health))
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
    )
    app.add_middleware(MetricsMiddleware)
    # Routes are matched in order, at a cost per route tried: the hottest come first.
    routers = (
        gpus_router,
        booking_gpu_router,
        health_router,
        bookings_router,
        booking_market_router,
        gang_router,
        auth_router,
        miners_router,
        orders_router,
        accounts_router,
        reviews_router,
        pricing_router,
        jobs_router,
        events_router,
        webhooks.router,
    )
    for router in routers:
        include_flat(app, router)
    for market_router in (offers_router, bids_router):
        include_flat(app, market_router, prefix="/v1")
    # The same offer and bid routes without the version prefix, for older clients.
    for market_router in (offers_router, bids_router):
        include_flat(app, market_router, include_in_schema=False)
    webhooks.document(app)
    # Last: the web pages answer only addresses no API route has taken.
    web.mount(app)
    return app


def factory() -> FastAPI:
    """Entry point for ``uvicorn --factory aitbc.app:factory`` (settings from environment):
    each server process."""
    app = create_app()
    _tune_garbage_collector()
    return app


def _tune_garbage_collector() -> None:
    """Everything built so far (modules, the app, its routes) lives as long as the process:
    freeze it out of the collector's sight, and collect the young generation less often. A
    request allocates thousands of short-lived objects, so the default threshold (700) runs
    a collection every few requests, and full collections walk every long-lived object:
    under 50 concurrent bookings this halved p99 latency (160 to 80 ms) and added a fifth
    more bookings per second (measured, bench/RESULTS.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
