"""Running things to measure: the coordinator (or the bare endpoint) as a server process,
wrk against it, pgbench against PostgreSQL, and the machine's description."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
ADMIN_KEY = "bench-admin-key-0123456789abcdef0123456789"
CONNECTIONS = 32


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().split()[1]
    return (
        f"{os.cpu_count()} cores ({cpu}), {int(memory) // 1024 // 1024} GiB, "
        f"Python {sys.version.split()[0]}"
    )


def require(command: str, package: str) -> str:
    found = shutil.which(command)
    if found is None:
        sys.exit(f"{command} is needed: apt-get update && apt-get install -y {package}")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server(
    command: list[str], env: dict[str, str] | None = None, *, ready: str = "/health"
) -> Iterator[tuple[str, int]]:
    """Start a server whose command takes ``{port}``; yield (base URL, pid) once ``ready``
    answers 200; stop it."""
    port = free_port()
    process = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in command],
        env=os.environ | (env or {}),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + ready, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"the server exited during start-up: {command}")
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not become ready")
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def bare(workers: int) -> list[str]:
    """The ceiling: a bare FastAPI endpoint under the coordinator's own server settings."""
    return [
        str(BIN / "uvicorn"), "bare_app:app", "--app-dir", str(BENCH), "--port", "{port}",
        "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning",
    ]  # fmt: skip


def coordinator(url: str, workers: int) -> list[str]:
    return [
        str(BIN / "aitbc"), "serve", "--port", "{port}", "--workers", str(workers),
        "--database-url", url,
    ]  # fmt: skip


COORDINATOR_ENV = {
    "AITBC_ADMIN_KEY": ADMIN_KEY,
    "AITBC_HEARTBEAT_TIMEOUT_SECONDS": str(10 * 365 * 86400),
    "AITBC_SWEEP_INTERVAL_SECONDS": os.environ.get("BENCH_SWEEP", "5"),
    "AITBC_LOG_LEVEL": "warning",  # no line per request: the figures carry no logging cost
}


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx responses and socket errors


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(
    url: str,
    script: str,
    args: list[str],
    *,
    seconds: float,
    connections: int = CONNECTIONS,
    threads: int = 2,
) -> Load:
    command = [
        require("wrk", "wrk"), "-t", str(threads), "-c", str(connections),
        "-d", f"{max(1, round(seconds))}s", "--latency",
        "-s", str(BENCH / "lua" / script), url, "--", *args,
    ]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"WRK_THREADS": str(threads)},
    )
    out = done.stdout
    if "Latency Distribution" not in out:
        raise RuntimeError(f"wrk gave no figures: {out}\n{done.stderr}")
    # wrk pads a figure in seconds with a trailing space ("1.06s ").
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    if not {"50", "99"} <= set(latency):
        raise RuntimeError(f"wrk gave no latency percentiles: {out}\n{done.stderr}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Load(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(latency["50"]),
        p99_ms=_ms(latency["99"]),
        requests=requests,
        errors=errors,
    )


def pgbench(database: str, *, script: str | None, seconds: float, clients: int = 50) -> float:
    """TPS of pgbench (TPC-B-like without a script)."""
    command = [require("pgbench", "postgresql-client"), "-h", "127.0.0.1", "-U", "postgres", "-n"]
    # A deadlock between two of the script's transactions (both moving one client's money)
    # is retried rather than ending the run.
    command += ["-c", str(clients), "-j", "2", "-T", str(int(seconds)), "--max-tries", "10"]
    if script is not None:
        command += ["-f", script]
    out = subprocess.run([*command, database], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]


def fresh_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def resident_peak_mb(pid: int) -> float:
    """The largest resident set of a process and its children, in MB."""
    pids = [pid, *_children(pid)]
    peak = 0
    for each in pids:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        if found:
            peak = max(peak, int(found.group(1)))
    return peak / 1024


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    found = {}
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[each] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return found


def _postgres_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


@dataclass
class Cpu:
    """CPU seconds used so far by each process of a server (with its workers) and of
    PostgreSQL; ``since`` gives what they used after an earlier reading (a process that
    started in between counts whole, one that ended in between is not seen)."""

    server: dict[int, float]
    database: dict[int, float]

    @classmethod
    def now(cls, pid: int) -> Cpu:
        return cls(_cpu_seconds([pid, *_children(pid)]), _cpu_seconds(_postgres_pids()))

    def since(self, earlier: Cpu) -> tuple[float, float]:
        def used(now: dict[int, float], then: dict[int, float]) -> float:
            return sum(seconds - then.get(pid, 0.0) for pid, seconds in now.items())

        return used(self.server, earlier.server), used(self.database, earlier.database)


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def run_checked(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True)


def drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def postgres_version() -> str:
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    with engine.connect() as conn:
        version = str(conn.execute(text("SHOW server_version")).scalar())
    engine.dispose()
    return version.split()[0]
