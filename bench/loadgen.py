"""A small HTTP/1.1 keep-alive load generator (asyncio, no dependencies), and a helper that
runs the coordinator as a subprocess for a benchmark."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
AITBC = Path(sys.executable).parent / "aitbc"

Request = tuple[str, str, bytes | None]  # method, path, JSON body


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def row(self) -> str:
        return (
            f"| {self.name} | {self.rps:,.0f} | {self.percentile(0.50):.1f} | "
            f"{self.percentile(0.99):.1f} | {statistics.fmean(self.latencies) * 1000:.1f} | "
            f"{', '.join(f'{k}: {v}' for k, v in sorted(self.statuses.items()))} |"
        )


HEADER = (
    "| scenario | req/s | p50 ms | p99 ms | mean ms | statuses |\n|---|---:|---:|---:|---:|---|"
)


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def _worker(
    host: str,
    port: int,
    api_key: str,
    next_request: Callable[[], Request | None],
    deadline: float,
    latencies: list[float],
    statuses: dict[int, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            request = next_request()
            if request is None:
                return
            method, path, body = request
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-Api-Key: {api_key}\r\n"
            if body is not None:
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            payload = (head + "\r\n").encode() + (body or b"")
            started = time.perf_counter()
            writer.write(payload)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def run_load(
    name: str,
    base_url: str,
    next_request: Callable[[], Request | None],
    *,
    concurrency: int,
    seconds: float,
    api_key: str | Callable[[int], str] = "",
) -> Result:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80

    async def main() -> Result:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(
                _worker(
                    host,
                    port,
                    api_key(i) if callable(api_key) else api_key,
                    next_request,
                    deadline,
                    latencies,
                    statuses,
                )
                for i in range(concurrency)
            )
        )
        return Result(name, len(latencies), time.perf_counter() - started, latencies, statuses)

    try:
        import uvloop

        return uvloop.run(main())
    except ImportError:
        return asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def coordinator(database_url: str, *, workers: int, admin_key: str) -> Iterator[str]:
    port = free_port()
    env = os.environ | {
        "AITBC_ADMIN_KEY": admin_key,
        "AITBC_SWEEP_INTERVAL_SECONDS": "5",
    }
    process = subprocess.Popen(
        [
            str(AITBC),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--database-url",
            database_url,
        ],
        env=env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise RuntimeError("the coordinator exited during start-up")
            time.sleep(0.1)
        else:
            raise RuntimeError("the coordinator did not become healthy")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}"
