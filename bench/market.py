"""The market's writes beside a plain booking, in one run on PostgreSQL: booking by
criteria (``POST /v1/marketplace/book``), an interruptible booking, and an on-demand booking
that preempts one, with pgbench's TPC-B-like transaction as the ceiling.

    .venv/bin/python bench/market.py [--seconds 8] [--gpus 40000]

One server (2 processes, 50 connections from wrk) on a database seeded with ``--gpus`` GPUs
and 50 funded clients, vacuumed and analyzed after the warm-up and after each of the
interruptible and preempting runs (as autovacuum would). In order: plain on-demand
bookings, each of a GPU of its own; then interruptible bookings (bid 0.1) of other GPUs;
then on-demand bookings of the GPUs those hold, each preempting the interruptible booking
that holds it (its settlement, notice and events in the same transaction); then bookings
by criteria (a model and a region in turn, out of 35 pairs), each booking the cheapest free
GPU that meets them. The goal: preempting and by criteria each at least half the plain
booking's rate, with a p99 within twice its."""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import harness
import invariants
from harness import COORDINATOR_ENV, coordinator, server, wrk
from run import PG, Report, database, pct, verdict, write_lines
from seed import MODELS, REGIONS, seed_clients, seed_gpus
from sqlalchemy import create_engine, text

from aitbc.migrate import upgrade

CONNECTIONS = 50


def _tpc_b(seconds: float) -> float:
    harness.fresh_database(PG + "aitbc_bench_tpcb")
    harness.run_checked(
        [harness.require("pgbench", "postgresql-client"), "-h", "127.0.0.1", "-U", "postgres",
         "-i", "-q", "-s", "50", "aitbc_bench_tpcb"]
    )  # fmt: skip
    harness.pgbench("aitbc_bench_tpcb", script=None, seconds=3)
    found = harness.pgbench("aitbc_bench_tpcb", script=None, seconds=seconds)
    harness.drop_database(PG + "aitbc_bench_tpcb")
    return found


def analyze(url: str) -> None:
    """Vacuum and analyze, as autovacuum does within a minute of such growth: planned on the
    statistics of the empty tables the migrations left, every window check reads the whole
    bookings table (a third of the preempting rate, measured); and a look-up answered from
    an index alone needs the pages marked visible."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def _held_interruptibly(url: str) -> list[str]:
    """The GPUs an open interruptible booking holds, in a shuffled order."""
    engine = create_engine(url)
    with engine.connect() as conn:
        found = [
            row[0]
            for row in conn.execute(
                text("SELECT gpu_id FROM bookings WHERE rental_type = 'interruptible' "
                     "AND status = 'open'")
            )
        ]  # fmt: skip
    engine.dispose()
    random.Random(13).shuffle(found)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--gpus", type=int, default=40_000)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="aitbc-market-bench-"))
    report = Report()
    tpc_b = _tpc_b(args.seconds)

    url = database("postgresql", "aitbc_bench_market", workdir)
    upgrade(url)
    gpu_ids = seed_gpus(url, gpus=args.gpus)
    random.Random(11).shuffle(gpu_ids)
    engine = create_engine(url)
    with engine.begin() as conn:  # any bid of 0.1 is taken (every seeded price is above)
        conn.execute(text("UPDATE gpus SET min_bid_units = 1"))
    engine.dispose()
    keys = write_lines(workdir, "keys.txt", seed_clients(url, count=50))
    quarter = len(gpu_ids) // 4
    warm = write_lines(workdir, "warm.txt", gpu_ids[:quarter])
    plain = write_lines(workdir, "plain.txt", gpu_ids[quarter : 2 * quarter])
    contested = write_lines(workdir, "contested.txt", gpu_ids[2 * quarter : 3 * quarter])
    pairs = [
        json.dumps({"model": name, "region": region})[:-1]
        for name, _, _ in MODELS
        for region in REGIONS
    ]
    criteria = write_lines(workdir, "criteria.txt", pairs)
    seconds = args.seconds

    def load(script: str, extra: list[str]) -> harness.Load:
        threads = min(2, args.connections)
        return wrk(
            base, script, extra, seconds=seconds, connections=args.connections, threads=threads
        )

    with server(coordinator(url, 2), COORDINATOR_ENV) as (base, _):
        try:
            wrk(base, "book.lua", [warm, keys], seconds=3, connections=CONNECTIONS)
        except RuntimeError as exc:
            print(f"warm-up: {exc}", file=sys.stderr)
        analyze(url)
        booked = load("book.lua", [plain, keys])
        bid = load("book.lua", [contested, keys, "interruptible"])
        analyze(url)
        held = write_lines(workdir, "held.txt", _held_interruptibly(url))
        preempting = load("book.lua", [held, keys])
        analyze(url)
        best = load("best.lua", [criteria, keys])
    engine = create_engine(url)
    with engine.connect() as conn:
        preempted = conn.execute(
            text("SELECT count(*) FROM bookings WHERE status = 'preempted'")
        ).scalar()
    engine.dispose()
    checked = invariants.check(url)

    def row(name: str, found: harness.Load, goal: str) -> list[str]:
        return [
            name, f"{found.rps:,.0f}", pct(found.rps / booked.rps), pct(found.rps / tpc_b),
            goal, f"{found.p50_ms:.1f}", f"{found.p99_ms:.1f}", str(found.errors),
        ]  # fmt: skip

    def half(found: harness.Load) -> str:
        ok = found.rps >= booked.rps / 2 and found.p99_ms <= 2 * booked.p99_ms
        return f"≥ 50 % of plain, p99 ≤ 2x: {verdict(ok and found.errors == 0)}"

    rows = [
        ["pgbench TPC-B-like, 50 clients (ceiling)", f"{tpc_b:,.0f}", "", "100 %", "", "", "",
         ""],
        row("book on demand, a GPU of its own (plain)", booked, ""),
        row("book interruptibly (bid 0.1), a GPU of its own", bid, ""),
        row("book on demand, preempting an interruptible booking", preempting, half(preempting)),
        row("book by criteria (model and region, 35 pairs in turn)", best, half(best)),
    ]  # fmt: skip
    report.table(
        "The market beside a plain booking",
        [
            "scenario",
            "per second",
            "of plain",
            "of TPC-B-like",
            "goal",
            "p50 ms",
            "p99 ms",
            "refused",
        ],
        rows,
        f"{harness.machine()}; PostgreSQL {harness.postgres_version()}; {args.gpus:,} GPUs, "
        f"2 server processes, {args.connections} connections, {seconds:.0f} s each. Bookings "
        f"preempted: {preempted:,}. After the runs: {checked}.",
    )
    if not args.keep:
        harness.drop_database(url)


if __name__ == "__main__":
    main()
