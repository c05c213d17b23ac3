"""Prometheus metrics. Request counters and latencies live in each process (aggregated across
server processes through PROMETHEUS_MULTIPROC_DIR); GPU counts by status and each GPU's
health and uptime are read from the database at scrape time, so every process reports the
same truth."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aitbc import logs
from aitbc.gpus.query import GpuVitals
from aitbc.store.lru import LRU

REQUESTS = Counter(
    "aitbc_http_requests_total",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "aitbc_http_request_duration_seconds",
    "HTTP request latency by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# A request's method as a label: the client chooses it, and every label value is a series
# kept for good, so a method of no route of ours counts as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The labelled counter and histogram of each (method, route, status) seen, so a request does
# not look its labels up again.
_LABELLED: LRU[tuple[str, str, int], tuple[Any, Any]] = LRU(1024)


def _count(method: str, template: str, status: int, took: float) -> None:
    key = (method, template, status)
    labelled = _LABELLED.get(key)
    if labelled is None:
        labelled = _LABELLED[key] = (
            REQUESTS.labels(method, template, str(status)),
            LATENCY.labels(method, template),
        )
    labelled[0].inc()
    labelled[1].observe(took)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            took = time.perf_counter() - started
            _count(method if method in _METHODS else "other", template, status, took)
            logs.request_done(method, scope.get("path", ""), status, took)


GIB = 1024**3
# Heartbeat figure -> (metric, help, factor to the metric's unit).
_HEALTH_GAUGES = {
    "utilization_pct": ("aitbc_gpu_utilization_ratio", "GPU utilisation, 0 to 1.", 0.01),
    "memory_used_gb": ("aitbc_gpu_memory_used_bytes", "GPU memory in use.", GIB),
    "memory_total_gb": ("aitbc_gpu_memory_total_bytes", "GPU memory in all.", GIB),
    "temperature_c": ("aitbc_gpu_temperature_celsius", "GPU temperature.", 1),
}


def _vital_families(vitals: Sequence[GpuVitals]) -> list[GaugeMetricFamily]:
    """Per listed GPU: the latest heartbeat's figures (only those reported within the
    heartbeat timeout) and uptime over 24 hours and 7 days."""
    labels = ["gpu_id", "miner_id", "model"]
    health = {
        figure: GaugeMetricFamily(name, text, labels=labels)
        for figure, (name, text, _) in _HEALTH_GAUGES.items()
    }
    uptime = GaugeMetricFamily(
        "aitbc_gpu_uptime_ratio",
        "Share of the window the GPU's miner was online, 0 to 1.",
        labels=[*labels, "window"],
    )
    for gpu in vitals:
        names = [gpu.gpu_id, gpu.miner_id, gpu.model]
        for figure, value in gpu.health.items():
            if figure in health and isinstance(value, int | float) and not isinstance(value, bool):
                health[figure].add_metric(names, value * _HEALTH_GAUGES[figure][2])
        uptime.add_metric([*names, "24h"], gpu.uptime_24h_bp / 10_000)
        uptime.add_metric([*names, "7d"], gpu.uptime_7d_bp / 10_000)
    return [*health.values(), uptime]


def render_process() -> bytes:
    """This process's figures (requests, their times; all processes' under several
    workers)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    return generate_latest(registry)


def render_registry(gpu_counts: Mapping[str, int], vitals: Sequence[GpuVitals]) -> bytes:
    """The registry's figures: GPUs by status, and each GPU's latest health and uptime."""
    gauge = GaugeMetricFamily("aitbc_gpus", "GPUs in the registry by status.", labels=["status"])
    for status, count in sorted(gpu_counts.items()):
        gauge.add_metric([status], count)
    snapshot = CollectorRegistry()
    snapshot.register(_Fixed([gauge, *_vital_families(vitals)]))
    return generate_latest(snapshot)


class _Fixed:
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self._families
