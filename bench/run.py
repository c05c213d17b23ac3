"""The benchmark: every figure beside its ceiling, measured in one run on this machine.

    .venv/bin/python bench/run.py [--seconds 5] [--only reads bookings growth sweeper]
                                  [--out bench/RESULTS.md]

Needs wrk and pgbench (``apt-get install wrk postgresql-client``) and PostgreSQL at
127.0.0.1:5432 (user postgres); it creates and drops its own databases there, and SQLite
files in a temporary directory. Ceilings: a bare FastAPI endpoint under the same server
settings (for the web path), pgbench's TPC-B-like transaction and the booking's own
statements run by pgbench alone (for bookings). After each booking run it checks that no
two open bookings of one GPU overlap and that the ledger sums to zero."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import harness
import invariants
from harness import COORDINATOR_ENV, Load, bare, coordinator, server, wrk
from seed import seed_clients, seed_gpus
from sqlalchemy import create_engine, text

from aitbc.bookings import service as bookings
from aitbc.config import Settings
from aitbc.kit.clock import ManualClock
from aitbc.migrate import upgrade
from aitbc.store.store import Store
from aitbc.sweeper import Sweeper

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
SHARED_SHAPE = harness.ROOT.parent / "shared" / "bench" / "booking-shape.pgbench.sql"
LIST = "/v1/marketplace/gpu/list"

# name, query (or None for details), goal as a share of the bare endpoint
READS: list[tuple[str, str | None, float]] = [
    ("GPU details", None, 0.40),
    ("list, page of 20", "limit=20", 0.40),
    ("list available, model=4090, memory_min=24, price_max=0.5",
     "available=true&model=4090&memory_min=24&price_max=0.5&limit=20", 0.35),
    ("list region=eu-west", "region=eu-west&limit=20", 0.35),
    ("list sort=rating", "sort=rating&limit=20", 0.35),
    ("list available, model=a100, sort=price", "available=true&model=a100&sort=price&limit=20",
     0.35),
]  # fmt: skip


@dataclass
class Report:
    sections: list[str] = field(default_factory=list)

    def table(self, title: str, header: list[str], rows: list[list[str]], notes: str = "") -> None:
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        if notes:
            lines += ["", notes]
        text_ = "\n".join(lines) + "\n"
        print(text_, flush=True)
        self.sections.append(text_)


def pct(value: float) -> str:
    return f"{value * 100:.0f} %"


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def write_lines(directory: Path, name: str, lines: list[str]) -> str:
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# -- reads ---------------------------------------------------------------------------------


def database(kind: str, name: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / (name + '.db')}"
    url = PG + name
    harness.fresh_database(url)
    return url


def read_paths(gpu_ids: list[str]) -> dict[str, list[str]]:
    sample = random.Random(3).sample(gpu_ids, min(1000, len(gpu_ids)))
    paths = {"GPU details": [f"/v1/marketplace/gpu/{g}" for g in sample]}
    for name, query, _ in READS:
        if query is not None:
            paths[name] = [f"{LIST}?{query}"]
    return paths


def reads(report: Report, args: argparse.Namespace, workdir: Path) -> None:
    for kind in args.databases:
        url = database(kind, "aitbc_bench_reads", workdir)
        upgrade(url)
        gpu_ids = seed_gpus(url, gpus=10_000)
        key = seed_clients(url, count=1, prefix="reader")[0]
        files = {
            name: write_lines(workdir, f"paths-{i}.txt", lines)
            for i, (name, lines) in enumerate(read_paths(gpu_ids).items())
        }
        health = write_lines(workdir, "health.txt", ["/health"])
        ok = write_lines(workdir, "ok.txt", ["/ok"])
        rows = []
        for workers in (1, 2):
            # Both servers run side by side and each row is measured right after a run of the
            # bare endpoint, its own ceiling: on a shared machine the ceiling moves by a
            # quarter within minutes, and a ceiling measured once would judge later rows by
            # another moment's machine.
            with (
                server(bare(workers), ready="/ok") as (bare_base, bare_pid),
                server(coordinator(url, workers), COORDINATOR_ENV) as (base, pid),
            ):
                ceiling_load = partial(wrk, bare_base, "read.lua", [ok], seconds=args.seconds)
                for name in ("GPU details", "list, page of 20"):  # warm-up, not measured
                    wrk(base, "read.lua", [files[name]], seconds=1)
                wrk(bare_base, "read.lua", [ok], seconds=1)
                scenarios = [("/health", "anonymous", [health], 0.5)] + [
                    (name, who, [files[name], api_key], goal)
                    for name, _, goal in READS
                    for who, api_key in (("anonymous", ""), ("client key", key))
                ]
                ceilings = []
                for name, who, wrk_args, goal in scenarios:
                    bare_load, bare_cpu = _measured(bare_pid, ceiling_load, kind)
                    ceilings.append((bare_load.rps, bare_cpu))
                    load, cpu = _measured(
                        pid, partial(wrk, base, "read.lua", wrk_args, seconds=args.seconds), kind
                    )
                    rows.append(
                        _read_row(kind, workers, name, who, load, bare_load.rps, goal) + cpu
                    )
            low, high = min(c[0] for c in ceilings), max(c[0] for c in ceilings)
            cpu_range = sorted(int(c[1][0]) for c in ceilings)
            rows.insert(
                len(rows) - len(scenarios),
                [kind, str(workers), "bare FastAPI endpoint (the ceiling, run before each row)",
                 "-", "-", f"{low:,.0f}-{high:,.0f}", "100 %", "", "", "",
                 f"{cpu_range[0]}-{cpu_range[-1]}", "-"],
            )  # fmt: skip
        report.table(
            f"Reads, {kind}, 10,000 GPUs, {harness.CONNECTIONS} connections",
            [
                "database",
                "processes",
                "scenario",
                "caller",
                "req/s",
                "ceiling req/s",
                "of ceiling",
                "goal",
                "p50 ms",
                "p99 ms",
                "server CPU µs/req",
                "database CPU µs/req",
            ],
            rows,
            "CPU per request: the server's processes and (on PostgreSQL) every PostgreSQL "
            "process, over the scenario's requests; wrk's own is not counted. Both run on the "
            "machine's two cores with wrk, so with 2 processes their sum bounds the rate.",
        )
        if kind == "postgresql":
            harness.drop_database(url)


def _measured(pid: int, run: Callable[[], Load], kind: str) -> tuple[Load, list[str]]:
    """The load and the CPU it cost, per request, as two table cells (the database's only
    on PostgreSQL: SQLite runs inside the server)."""
    before = harness.Cpu.now(pid)
    load = run()
    after = harness.Cpu.now(pid)
    per = 1e6 / max(load.requests, 1)
    server, database = after.since(before)
    return load, [
        f"{server * per:.0f}",
        f"{database * per:.0f}" if kind == "postgresql" else "-",
    ]


def _read_row(
    kind: str, workers: int, name: str, who: str, load: Load, ceiling: float, goal: float
) -> list[str]:
    share = load.rps / ceiling
    mark = "" if load.errors == 0 else f" ({load.errors} errors)"
    return [
        kind, str(workers), name, who, f"{load.rps:,.0f}{mark}", f"{ceiling:,.0f}", pct(share),
        f"≥ {pct(goal)}: {verdict(share >= goal and load.errors == 0)}",
        f"{load.p50_ms:.1f}", f"{load.p99_ms:.1f}",
    ]  # fmt: skip


# -- bookings ------------------------------------------------------------------------------


def bookings_section(report: Report, args: argparse.Namespace, workdir: Path) -> None:
    tpcb = PG + "aitbc_bench_tpcb"
    harness.fresh_database(tpcb)
    harness.run_checked(
        [
            harness.require("pgbench", "postgresql-client"),
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-i",
            "-q",
            "-s",
            "50",
            "aitbc_bench_tpcb",
        ]
    )
    url = database("postgresql", "aitbc_bench_book", workdir)
    upgrade(url)
    gpu_ids = seed_gpus(url, gpus=40_000)
    keys = write_lines(workdir, "keys.txt", seed_clients(url, count=50))
    # The last GPU is beyond the ones booking-shape.pgbench.sql books.
    hot, rest = gpu_ids[-1], gpu_ids[:-1]
    random.Random(5).shuffle(rest)
    warm = write_lines(workdir, "warm-gpus.txt", rest[:4000])
    gpus = write_lines(workdir, "gpus.txt", rest[4000:])
    hot_file = write_lines(workdir, "hot.txt", [hot])
    seconds = args.booking_seconds

    # Each after a warm-up of its own: a freshly loaded database runs slowly at first.
    harness.pgbench("aitbc_bench_tpcb", script=None, seconds=3)
    tpc_b = harness.pgbench("aitbc_bench_tpcb", script=None, seconds=seconds)
    harness.pgbench("aitbc_bench_book", script=str(SHARED_SHAPE), seconds=3)
    shape = harness.pgbench("aitbc_bench_book", script=str(SHARED_SHAPE), seconds=seconds)
    with server(coordinator(url, 2), COORDINATOR_ENV) as (base, _):
        # A warm-up on other GPUs first: connections opened, statements prepared, model
        # prices computed once (a server that just started does all that on its first
        # bookings). Then one wrk thread per connection, each booking for a client of its own.
        try:
            wrk(base, "book.lua", [warm, keys], seconds=3, connections=50, threads=50)
        except RuntimeError as exc:  # a warm-up that got nothing back is reported, not fatal
            print(f"warm-up: {exc}", file=sys.stderr)
        booked = wrk(base, "book.lua", [gpus, keys], seconds=seconds, connections=50, threads=50)
        refused = wrk(
            base, "book.lua", [hot_file, keys, "hot"], seconds=seconds, connections=50, threads=50
        )
    engine = create_engine(url)
    with engine.connect() as conn:
        hot_bookings = conn.execute(
            text("SELECT count(*) FROM bookings WHERE gpu_id = :g"), {"g": hot}
        ).scalar()
    engine.dispose()
    checked = invariants.check(url)

    sqlite_url = database("sqlite", "aitbc_bench_book", workdir)
    upgrade(sqlite_url)
    sqlite_ids = seed_gpus(sqlite_url, gpus=20_000)
    sqlite_keys = write_lines(workdir, "sqlite-keys.txt", seed_clients(sqlite_url, count=50))
    sqlite_gpus = write_lines(workdir, "sqlite-gpus.txt", sqlite_ids)
    with server(coordinator(sqlite_url, 1), COORDINATOR_ENV) as (base, _):
        on_sqlite = wrk(base, "book.lua", [sqlite_gpus, sqlite_keys], seconds=seconds)
    sqlite_checked = invariants.check(sqlite_url)

    share = booked.rps / tpc_b
    rows = [
        ["pgbench TPC-B-like, 50 clients (ceiling)", f"{tpc_b:,.0f}", "100 %", "", "", ""],
        ["pgbench, the booking's statements alone (booking-shape.pgbench.sql)",
         f"{shape:,.0f}", pct(shape / tpc_b), "", "", ""],
        ["book, a different GPU each time (2 processes, 50 connections)",
         f"{booked.rps:,.0f}", pct(share),
         f"≥ 20 % of TPC-B-like, p99 ≤ 150 ms: "
         f"{verdict(share >= 0.2 and booked.p99_ms <= 150 and booked.errors == 0)}",
         f"{booked.p50_ms:.1f}", f"{booked.p99_ms:.1f}"],
        ["book, one hot GPU (refused with 409 but one)", f"{refused.rps:,.0f}", "",
         f"≥ 1,000/s: {verdict(refused.rps >= 1000 and hot_bookings == 1)}",
         f"{refused.p50_ms:.1f}", f"{refused.p99_ms:.1f}"],
        ["book on SQLite, 1 process, 32 connections", f"{on_sqlite.rps:,.0f}", "",
         f"≥ 300/s: {verdict(on_sqlite.rps >= 300 and on_sqlite.errors == 0)}",
         f"{on_sqlite.p50_ms:.1f}", f"{on_sqlite.p99_ms:.1f}"],
    ]  # fmt: skip
    report.table(
        "Bookings",
        ["scenario", "per second", "of TPC-B-like", "goal", "p50 ms", "p99 ms"],
        rows,
        f"Our bookings are {pct(booked.rps / shape)} of the booking's statements run by "
        f"pgbench alone. Bookings refused: {booked.errors} (different GPUs, PostgreSQL), "
        f"{on_sqlite.errors} (SQLite); the hot GPU was "
        f"booked {hot_bookings} time(s). After the runs, PostgreSQL: {checked}; SQLite: "
        f"{sqlite_checked}.",
    )
    harness.drop_database(url)
    harness.drop_database(tpcb)


# -- growth and memory -----------------------------------------------------------------------

GROWTH = [
    ("GPU details", None),
    ("list, page of 20", "limit=20"),
    ("list available, model=4090, memory_min=24, price_max=0.5",
     "available=true&model=4090&memory_min=24&price_max=0.5&limit=20"),
    ("list region=eu-west", "region=eu-west&limit=20"),
    ("list sort=rating", "sort=rating&limit=20"),
]  # fmt: skip


def growth(report: Report, args: argparse.Namespace, workdir: Path) -> None:
    rows = []
    memory_rows = []
    for kind in args.databases:
        p50: dict[int, dict[str, float]] = {}
        for size in (1_000, 100_000):
            url = database(kind, f"aitbc_bench_growth_{size}", workdir)
            upgrade(url)
            gpu_ids = seed_gpus(url, gpus=size)
            sample = random.Random(9).sample(gpu_ids, 1000)
            files = {
                name: write_lines(
                    workdir,
                    f"growth-{i}.txt",
                    [f"/v1/marketplace/gpu/{g}" for g in sample]
                    if query is None
                    else [f"{LIST}?{query}"],
                )
                for i, (name, query) in enumerate(GROWTH)
            }
            p50[size] = {}
            with server(coordinator(url, 1), COORDINATOR_ENV) as (base, pid):
                # Warm-up, not measured: twice through the scenarios, past the server's first
                # sweep (5 s after start), which prices every model once; the steady state is
                # measured, not the start-up.
                for _ in range(2):
                    for name, _ in GROWTH:
                        wrk(base, "read.lua", [files[name]], seconds=1, connections=1, threads=1)
                for name, _ in GROWTH:
                    load = wrk(base, "read.lua", [files[name]], seconds=args.seconds,
                               connections=1, threads=1)  # fmt: skip
                    p50[size][name] = load.p50_ms
                if size == 100_000:
                    for name, _ in GROWTH:  # the memory figure is taken under load
                        wrk(base, "read.lua", [files[name]], seconds=args.seconds)
                    peak = harness.resident_peak_mb(pid)
                    memory_rows.append([kind, f"{peak:.0f}", f"< 250 MB: {verdict(peak < 250)}"])
            if kind == "postgresql":
                harness.drop_database(url)
        for name, _ in GROWTH:
            small, large = p50[1_000][name], p50[100_000][name]
            rows.append([kind, name, f"{small:.2f}", f"{large:.2f}", f"{large / small:.2f}",
                         f"≤ 1.5: {verdict(large / small <= 1.5)}"])  # fmt: skip
    report.table(
        "Growth: p50 latency, one connection, 1,000 against 100,000 GPUs",
        ["database", "scenario", "p50 ms at 1,000", "p50 ms at 100,000", "ratio", "goal"],
        rows,
    )
    report.table(
        "Memory: one process under the list load with 100,000 GPUs",
        ["database", "peak resident MB", "goal"],
        memory_rows,
    )


# -- the sweeper ----------------------------------------------------------------------------


def sweeper(report: Report, args: argparse.Namespace, workdir: Path) -> None:
    rows = []
    for kind in args.databases:
        url = database(kind, "aitbc_bench_sweep", workdir)
        upgrade(url)
        gpu_ids = seed_gpus(url, gpus=10_000)
        seed_clients(url, count=50)
        start = datetime.now(UTC)
        asyncio.run(_book_all(url, gpu_ids, start))
        clock = ManualClock(start + timedelta(hours=2))
        # The seeded miners send no heartbeats: with the default timeout every booking would
        # end as interrupted at the seeding (docs/outages.md), not as completed.
        settings = Settings(
            database_url=url, sweep_interval_seconds=0, heartbeat_timeout_seconds=10 * 365 * 86400
        )
        store = Store(url)
        asyncio.run(store.open())
        began = time.perf_counter()
        settled = Sweeper(store, clock, settings).run_once()
        took = time.perf_counter() - began
        again = Sweeper(store, clock, settings).run_once()
        asyncio.run(store.close())
        engine = create_engine(url)
        with engine.connect() as conn:
            closings = conn.execute(
                text("SELECT count(*) FROM ledger_transactions WHERE kind = 'booking_completed'")
            ).scalar()
            still_open = conn.execute(
                text("SELECT count(*) FROM bookings WHERE status = 'open'")
            ).scalar()
        engine.dispose()
        checked = invariants.check(url)
        once = settled == closings == 10_000 and again == 0 and still_open == 0
        rows.append([kind, f"{settled:,}", f"{took:.2f}",
                     f"< 5 s, each once: {verdict(took < 5 and once)}", checked])  # fmt: skip
        if kind == "postgresql":
            harness.drop_database(url)
    report.table(
        "The sweeper: 10,000 bookings falling due together",
        ["database", "settled", "seconds", "goal", "after"],
        rows,
        "The whole sweep (every step of `Sweeper.run_once`), in one process; a second sweep "
        "settled nothing.",
    )


async def _book_all(url: str, gpu_ids: list[str], now: datetime) -> None:
    store = Store(url, pool_size=8)
    await store.open()
    pending = list(gpu_ids)
    settings = Settings(database_url=url, heartbeat_timeout_seconds=86400)

    async def worker(i: int) -> None:
        while pending:
            gpu_id = pending.pop()
            wanted = bookings.BookingRequest(
                gpu_id=gpu_id, client_id=f"perf-client-{i}", seconds=3600
            )

            async def work(conn: bookings.Conn, wanted: bookings.BookingRequest = wanted) -> None:
                await bookings.book(conn, wanted, now=now, settings=settings)

            await store.write(work)

    await asyncio.gather(*(worker(i) for i in range(8)))
    await store.close()


SECTIONS: dict[str, Callable[[Report, argparse.Namespace, Path], None]] = {
    "reads": reads,
    "bookings": bookings_section,
    "growth": growth,
    "sweeper": sweeper,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="per read scenario")
    parser.add_argument("--booking-seconds", type=float, default=10)
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument(
        "--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    report = Report()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        f"Measured {stamp} on {harness.machine()}; PostgreSQL {harness.postgres_version()} "
        "on the same machine. Servers: `aitbc serve` (uvicorn, uvloop + httptools) and the "
        f"bare endpoint under the same settings; load from wrk on the same cores, "
        f"{harness.CONNECTIONS} connections unless a row says otherwise; "
        f"{args.seconds:.0f} s per read scenario, {args.booking_seconds:.0f} s per booking "
        "scenario, each after a short warm-up on other data.\n"
    )
    print(head)
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-") as workdir:
        for name in args.only:
            SECTIONS[name](report, args, Path(workdir))
    if args.out:
        args.out.write_text("\n".join([head, *report.sections]))


if __name__ == "__main__":
    main()
