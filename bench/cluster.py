"""Several nodes behind haproxy on one PostgreSQL, as an operator runs them: the correctness
checks of a cluster, and list throughput by shape.

    .venv/bin/python bench/cluster.py [--nodes 3] [--workers 2] [--seconds 5] [--out FILE]

A private PostgreSQL instance (initdb into a temporary folder, its own port) keeps the shared
server's connections free. The nodes start at once on its empty database (they must
migrate it once between them), haproxy runs with deploy/haproxy.cfg's settings pointed at
them, and then:

- race: 50 clients book one GPU at once through the proxy: exactly one booking;
- long poll: a miner waits on one node, a job is submitted on another: how long it took to
  hear of it;
- rolling restart: every node in turn gets SIGTERM and is started again while wrk reads,
  and books with an Idempotency-Key on each request, through the proxy: how many failed;
- the proxy's own cost: a list read straight from one node and through haproxy;
- after the restart: no overlapping open bookings, every transaction and the ledger sum to
  zero;
- on a cluster of its own whose first node runs 5 s behind (faketime): one-second bookings
  settled once by six sweepers, a silent miner's booking interrupted once, and a booking
  made on the node behind and released on another charged the second that passed;
- throughput of the list and of bookings through the proxy for 1x1, 1x2, 2x2 and 3x2
  (nodes x workers);
- the sweepers' idle cost: CPU a minute at 40,000 GPUs for 1 and 6 processes.

Needs wrk, haproxy and faketime (apt-get install -y wrk haproxy faketime) and PostgreSQL's
server binaries."""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import harness
import httpx
import invariants
from harness import ADMIN_KEY, COORDINATOR_ENV, free_port, require, wrk
from run import write_lines
from seed import seed_clients, seed_gpus

ROOT = harness.ROOT


@contextmanager
def private_postgres(workdir: Path) -> Iterator[str]:
    """initdb into ``workdir``, started on a port of its own; its URL."""
    versions = sorted(Path("/usr/lib/postgresql").iterdir(), key=lambda p: int(p.name))
    bin_dir = versions[-1] / "bin"
    data = workdir / "pgdata"
    data.mkdir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(workdir, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -c max_connections=200 -c listen_addresses=127.0.0.1 -k {workdir}"
    subprocess.run(
        [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w",
         "-l", str(workdir / "postgres.log"), "start"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    try:
        subprocess.run(
            [*as_postgres, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
             "-U", "postgres", "aitbc"],
            check=True,
        )  # fmt: skip
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/aitbc"
    finally:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )


class Node:
    """One ``aitbc serve`` on a port of its own, which can be stopped and started again."""

    def __init__(
        self,
        url: str,
        workers: int,
        *,
        migrate: bool,
        env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
    ) -> None:
        self.url, self.workers, self.port = url, workers, free_port()
        self.env, self.prefix = env or {}, prefix or []
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.migrate = migrate
        self.log = Path(tempfile.mkstemp(prefix="aitbc-node-", suffix=".log")[1])

    def start(self) -> None:
        command = [
            *self.prefix, str(harness.BIN / "aitbc"), "serve", "--port", str(self.port),
            "--workers", str(self.workers), "--database-url", self.url,
        ]  # fmt: skip
        if not self.migrate:
            command.append("--no-migrate")
        env = os.environ | COORDINATOR_ENV | {"AITBC_SHUTDOWN_GRACE_SECONDS": "10"} | self.env
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log
            )

    def ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                code, said = self.process.returncode, self.log.read_text()[-2000:]
                raise RuntimeError(f"a node exited at start (code {code}): {said}")
            try:
                if httpx.get(self.base + "/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("a node did not become ready")

    def stop(self) -> float:
        """SIGTERM; how long the node took to exit."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - started


@contextmanager
def nodes(
    url: str,
    count: int,
    workers: int,
    *,
    migrate: bool = False,
    env: dict[str, str] | None = None,
    skewed: list[str] | None = None,
) -> Iterator[list[Node]]:
    """``count`` nodes; with ``skewed``, the first runs under that command prefix (faketime,
    to set its clock off)."""
    started = [
        Node(url, workers, migrate=migrate, env=env, prefix=skewed if i == 0 else None)
        for i in range(count)
    ]
    try:
        for node in started:
            node.start()
        for node in started:
            node.ready()
        yield started
    finally:
        for node in started:
            if node.process is not None and node.process.poll() is None:
                node.stop()


@contextmanager
def haproxy(backends: list[Node], workdir: Path) -> Iterator[str]:
    """deploy/haproxy.cfg with its servers replaced by ``backends``; its URL."""
    port = free_port()
    config = (ROOT / "deploy" / "haproxy.cfg").read_text()
    head, _, _ = config.partition("    server node1")
    servers = "".join(f"    server n{i} 127.0.0.1:{n.port}\n" for i, n in enumerate(backends))
    text = head.replace("bind :8080", f"bind 127.0.0.1:{port}") + servers
    text = text.replace("    log stdout format raw local0\n", "")
    path = workdir / f"haproxy-{port}.cfg"
    path.write_text(text)
    process = subprocess.Popen([require("haproxy", "haproxy"), "-f", str(path)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(base + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("haproxy did not pass requests")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(10)


def _key(base: str, role: str, owner: str) -> str:
    made = httpx.post(
        f"{base}/v1/admin/api-keys",
        headers={"X-Api-Key": ADMIN_KEY},
        json={"role": role, "owner_id": owner},
    )
    made.raise_for_status()
    key: str = made.json()["key"]
    return key


def _miner_with_gpus(base: str, owner: str, count: int) -> tuple[str, list[str]]:
    key = _key(base, "miner", owner)
    gpus = [{"name": f"{owner} GPU", "memory_gb": 24} for _ in range(count)]
    made = httpx.post(
        f"{base}/v1/miners/register",
        headers={"X-Api-Key": key},
        json={"capabilities": {"gpus": gpus}},
    )
    made.raise_for_status()
    return key, [ref["gpu_id"] for ref in made.json()["gpus"]]


def _funded_client(base: str, owner: str) -> str:
    key = _key(base, "client", owner)
    httpx.post(
        f"{base}/v1/admin/accounts/{owner}/deposit",
        headers={"X-Api-Key": ADMIN_KEY},
        params={"create": "true"},
        json={"amount": "1000"},
    ).raise_for_status()
    return key


def race(proxy: str) -> str:
    miner = _key(proxy, "miner", "race-miner")
    registered = httpx.post(
        f"{proxy}/v1/marketplace/gpu/register",
        headers={"X-Api-Key": miner},
        json={"gpu": {"name": "RTX 4090", "memory_gb": 24, "price_per_hour": "1"}},
    )
    registered.raise_for_status()
    gpu = registered.json()["gpu_id"]
    clients = [_funded_client(proxy, f"racer-{i}") for i in range(50)]
    gate = threading.Barrier(50)

    def book(key: str) -> int:
        gate.wait()
        return httpx.post(
            f"{proxy}/v1/marketplace/gpu/{gpu}/book",
            headers={"X-Api-Key": key},
            json={"duration_hours": 1},
            timeout=30,
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(book, clients))
    made = codes.count(201)
    verdict = "met" if made == 1 and codes.count(409) == 49 else "**not met**"
    refused = codes.count(409)
    return (
        f"50 clients book one GPU through the proxy: {made} booking(s), {refused} x 409 ({verdict})"
    )


def long_poll(first: Node, second: Node) -> str:
    miner, _ = _miner_with_gpus(first.base, "poll-miner", 1)
    client = _funded_client(first.base, "poll-client")
    heard: list[float] = []

    def wait() -> None:
        response = httpx.post(
            f"{first.base}/v1/miners/poll",
            headers={"X-Api-Key": miner},
            json={"max_wait_seconds": 20},
            timeout=30,
        )
        if response.status_code == 200:
            heard.append(time.monotonic())

    waiting = threading.Thread(target=wait)
    waiting.start()
    time.sleep(1)  # the poll is waiting on the first node
    submitted = time.monotonic()
    httpx.post(
        f"{second.base}/v1/jobs",
        headers={"X-Api-Key": client},
        json={"payload": {"type": "inference"}, "constraints": {"gpu_model": "poll-miner GPU"}},
    ).raise_for_status()
    waiting.join(30)
    if not heard:
        return "long poll on one node, job submitted on another: not heard (**not met**)"
    took = (heard[0] - submitted) * 1000
    return f"long poll on one node, job submitted on another: heard after {took:.0f} ms"


def rolling_restart(proxy: str, cluster: list[Node], paths: str, gpus: str, keys: str) -> list[str]:
    """Every node in turn stopped (SIGTERM) and started again while wrk reads, and books
    with an Idempotency-Key each, through the proxy."""
    results: dict[str, harness.Load] = {}
    exits: list[float] = []
    seconds = 8 * len(cluster) + 10

    def reads() -> None:
        results["reads"] = wrk(proxy, "read.lua", [paths], seconds=seconds, connections=12)

    def bookings() -> None:
        results["bookings"] = wrk(
            proxy, "book.lua", [gpus, keys, "keyed"], seconds=seconds, connections=4
        )

    loads = [threading.Thread(target=reads), threading.Thread(target=bookings)]
    for load in loads:
        load.start()
    time.sleep(3)
    for node in cluster:
        exits.append(node.stop())
        node.start()
        node.ready()
        time.sleep(3)  # haproxy's checks (2 s apart, two to rise) bring it back
    for load in loads:
        load.join()
    said = []
    for what, done in results.items():
        verdict = "met" if done.errors == 0 else "**not met**"
        said.append(
            f"rolling restart of {len(cluster)} nodes, {what} through the proxy meanwhile: "
            f"{done.requests:,} requests, {done.errors} failed ({verdict})"
        )
    said.append(f"each node exited {max(exits):.1f} s after its SIGTERM at the most")
    return said


# Miners go offline after 5 s of silence and their bookings are interrupted 3 s later; the
# sweepers run every second.
_OUTAGES = {
    "AITBC_HEARTBEAT_TIMEOUT_SECONDS": "5",
    "AITBC_OUTAGE_GRACE_SECONDS": "3",
    "AITBC_SWEEP_INTERVAL_SECONDS": "1",
}
_SETTLED = """
SELECT count(*) FILTER (WHERE b.status = 'open'),
       count(*) FILTER (WHERE (SELECT count(*) FROM ledger_transactions t
                               WHERE t.booking_id = b.id AND t.kind <> 'booking_escrow') <> 1)
FROM bookings b WHERE b.id = ANY(%s)
"""


def _settled_once(url: str, booking_ids: list[str]) -> tuple[int, int]:
    """How many of the bookings are still open, and how many were not ended by exactly one
    transaction."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        row = conn.execute(_SETTLED, (booking_ids,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def sweepers_and_clocks(workdir: Path) -> list[str]:
    """On a cluster of its own (short heartbeat timeout, sweeping every second, the first
    node's clock 5 s behind under faketime): one-second bookings settled once by six
    sweepers; a silent miner's booking interrupted and refunded once; a booking made on
    the node behind and released on another a second later charged about a second."""
    said = []
    with ExitStack() as stack:
        url = stack.enter_context(private_postgres(Path(tempfile.mkdtemp(dir=workdir))))
        skew = ["faketime", "-f", "-5s"] if shutil.which("faketime") else None
        cluster = stack.enter_context(nodes(url, 3, 2, migrate=True, env=_OUTAGES, skewed=skew))
        proxy = stack.enter_context(haproxy(cluster, workdir))
        client = _funded_client(proxy, "sweeper-client")
        _, gpus = _miner_with_gpus(proxy, "short", 50)
        booked = []
        for gpu in gpus:  # within the miner's 5 s of presence
            made = httpx.post(
                f"{proxy}/v1/marketplace/gpu/{gpu}/book",
                headers={"X-Api-Key": client},
                json={"duration_hours": "0.000278"},  # one second
            )
            made.raise_for_status()
            booked.append(made.json()["booking_id"])
        time.sleep(4)
        still_open, not_once = _settled_once(url, booked)
        verdict = "met" if (still_open, not_once) == (0, 0) else "**not met**"
        said.append(
            f"{len(booked)} one-second bookings on 3 nodes x 2 sweepers: {still_open} left "
            f"open, {not_once} not ended by exactly one transaction ({verdict})"
        )
        _, silent_gpus = _miner_with_gpus(proxy, "silent", 1)
        made = httpx.post(
            f"{proxy}/v1/marketplace/gpu/{silent_gpus[0]}/book",
            headers={"X-Api-Key": client},
            json={"duration_hours": 1},
        )
        made.raise_for_status()
        silent_booking = made.json()["booking_id"]
        time.sleep(5 + 3 + 3)  # offline, past the grace, swept
        still_open, not_once = _settled_once(url, [silent_booking])
        status = httpx.get(
            f"{proxy}/v1/bookings/{silent_booking}", headers={"X-Api-Key": client}
        ).json()["status"]
        verdict = "met" if (status, not_once) == ("interrupted", 0) else "**not met**"
        said.append(
            f"a miner silent past its grace: its booking {status}, ended by "
            f"{'one transaction' if not not_once else 'not exactly one'} ({verdict})"
        )
        if skew is not None:
            _, clock_gpus = _miner_with_gpus(cluster[1].base, "clocked", 1)
            made = httpx.post(
                f"{cluster[0].base}/v1/marketplace/gpu/{clock_gpus[0]}/book",
                headers={"X-Api-Key": client},
                json={"duration_hours": 1},
            )
            made.raise_for_status()
            time.sleep(1)
            released = httpx.post(
                f"{cluster[1].base}/v1/bookings/{made.json()['booking_id']}/release",
                headers={"X-Api-Key": client},
            )
            released.raise_for_status()
            used = released.json()["used_seconds"]
            verdict = "met" if 1 <= used <= 2 else "**not met**"
            said.append(
                "booked on a node whose clock is 5 s behind, released on another 1 s later: "
                f"{used} s charged ({verdict})"
            )
        said.append(f"afterwards: {invariants.check(url)}")
    return said


def idle_cost(url: str, seconds: float) -> list[str]:
    """CPU the sweepers cost a minute on a registry that nothing else touches: 1 node of 1
    worker, and 3 nodes of 2 (the nodes' processes, and PostgreSQL's)."""
    rows = []
    for count, workers in ((1, 1), (3, 2)):
        with nodes(url, count, workers) as shape:
            time.sleep(8)  # the first sweeps (and their chores) are done
            pids = [node.process.pid for node in shape if node.process is not None]
            before = [harness.Cpu.now(pid) for pid in pids]
            time.sleep(seconds)
            after = [harness.Cpu.now(pid) for pid in pids]
        used = [now.since(then) for now, then in zip(after, before, strict=True)]
        scale = 60 / seconds
        server = sum(nodes_used for nodes_used, _ in used) * scale
        database = used[0][1] * scale
        rows.append(f"| {count} x {workers} | {server:.2f} | {database:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--out")
    args = parser.parse_args()
    require("wrk", "wrk")
    require("haproxy", "haproxy")
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {harness.machine()}: "
        f"bench/cluster.py, {args.nodes} nodes x {args.workers} workers on a private "
        "PostgreSQL, behind haproxy (deploy/haproxy.cfg).",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)
        url = stack.enter_context(private_postgres(workdir))
        started = time.monotonic()
        cluster = stack.enter_context(nodes(url, args.nodes, args.workers, migrate=True))
        lines.append(
            f"- {args.nodes} nodes started at once on the empty database: all ready after "
            f"{time.monotonic() - started:.1f} s (one migrated it)"
        )
        gpu_ids = seed_gpus(url, gpus=8_000)  # into the empty registry, before anything else
        proxy = stack.enter_context(haproxy(cluster, workdir))
        lines.append(f"- {race(proxy)}")
        lines.append(f"- {long_poll(cluster[0], cluster[-1])}")
        sample = gpu_ids[:200]
        paths = write_lines(
            workdir,
            "paths.txt",
            [f"/v1/marketplace/gpu/{g}" for g in sample] + ["/v1/marketplace/gpu/list?limit=20"],
        )
        booking_gpus = write_lines(workdir, "gpus.txt", gpu_ids[200:])
        booking_keys = write_lines(workdir, "keys.txt", seed_clients(url, count=20))
        for line in rolling_restart(proxy, cluster, paths, booking_gpus, booking_keys):
            lines.append(f"- {line}")
        lines.append(f"- after all of it: {invariants.check(url)}")
        lines += [f"- {line}" for line in sweepers_and_clocks(workdir)]
        stack.close()  # the nodes and the proxy, before the shapes below
        url = stack.enter_context(private_postgres(Path(tempfile.mkdtemp(dir=tmp))))
        first = stack.enter_context(nodes(url, 1, 1, migrate=True))
        gpu_ids = seed_gpus(url, gpus=40_000)
        paths = write_lines(
            workdir, "paths2.txt", [f"/v1/marketplace/gpu/{g}" for g in gpu_ids[:200]]
        )
        renters = write_lines(workdir, "renters.txt", seed_clients(url, count=50, prefix="r"))
        # Each shape books GPUs of its own: a GPU booked twice is a 409, not a speed.
        slices = [
            write_lines(workdir, f"slice-{i}.txt", gpu_ids[200 + i * 9_000 : 200 + (i + 1) * 9_000])
            for i in range(4)
        ]
        for node in first:
            node.stop()
        lines += [
            "",
            "| nodes x workers | reads through haproxy, req/s | errors | bookings, req/s | "
            "errors |",
            "|---|---:|---:|---:|---:|",
        ]
        for i, (count, workers) in enumerate(((1, 1), (1, 2), (2, 2), (3, 2))):
            with nodes(url, count, workers) as shape, haproxy(shape, workdir) as front:
                done = wrk(front, "read.lua", [paths], seconds=args.seconds)
                booked = wrk(
                    front, "book.lua", [slices[i], renters], seconds=args.seconds, connections=16
                )
                if (count, workers) == (1, 1):  # in turns, three times: the medians
                    straight, proxied = [], [done.rps]
                    for turn in range(3):
                        straight.append(
                            wrk(shape[0].base, "read.lua", [paths], seconds=args.seconds).rps
                        )
                        if turn < 2:
                            proxied.append(
                                wrk(front, "read.lua", [paths], seconds=args.seconds).rps
                            )
                    direct, alone = statistics.median(straight), statistics.median(proxied)
            lines.append(
                f"| {count} x {workers} | {done.rps:,.0f} | {done.errors} | {booked.rps:,.0f} "
                f"| {booked.errors} |"
            )
        lines += [
            "",
            f"Idle, {len(gpu_ids):,} GPUs, sweeping every 5 s: CPU seconds a "
            f"minute over {args.idle_seconds:.0f} s (PostgreSQL: every process of the "
            "postgres user on this machine)",
            "",
            "| nodes x workers | the nodes' processes | PostgreSQL |",
            "|---|---:|---:|",
            *idle_cost(url, args.idle_seconds),
        ]
        lines += [
            "",
            f"The proxy's own cost: one node of one worker answers {direct:,.0f} req/s "
            f"straight and {alone:,.0f} through haproxy ({alone / direct:.0%}; medians of "
            "three turns each). Every shape "
            "shares the machine's 2 cores with wrk, haproxy and PostgreSQL, so more processes "
            "than cores read no faster here: the rows show that each shape serves without "
            "errors, not how the cluster scales on hosts of its own. Bookings are bounded by "
            "PostgreSQL's commits on the one disk.",
        ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    sys.exit(main())
