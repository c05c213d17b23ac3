"""Booking throughput and latency on PostgreSQL at concurrency 50 with several server
processes, beside the same server's /health.

    .venv/bin/python bench/bench_booking.py [--database-url URL] [--workers 2 4]

Each booking request books a different GPU (the uncontended path: lock, settle, overlap
check, escrow ledger posting, order); the "one hot GPU" scenario sends every request to the
same GPU, so one succeeds and the rest are refused under its row lock."""

from __future__ import annotations

import argparse
import itertools
import json
import os
from datetime import UTC, datetime

from loadgen import HEADER, coordinator, machine, run_load
from seed import seed_gpus
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aitbc.accounts.ledger import deposit
from aitbc.auth.service import create_key
from aitbc.db import Database
from aitbc.migrate import upgrade

ADMIN_KEY = "bench-admin-key-0123456789abcdef0123456789"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/aitbc_bench"


def fresh_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def client_keys(url: str, count: int) -> list[str]:
    db = Database(url)
    now = datetime.now(UTC)
    keys = []
    with db.session(write=True) as session:
        for i in range(count):
            _, secret = create_key(session, role="client", owner_id=f"bench-client-{i}", now=now)
            deposit(session, owner_id=f"bench-client-{i}", amount_units=10**15, now=now)
            keys.append(secret)
        session.commit()
    db.dispose()
    return keys


def run(args: argparse.Namespace, workers: int) -> None:
    fresh_database(args.database_url)
    upgrade(args.database_url)
    gpu_ids = seed_gpus(args.database_url, gpus=args.gpus)
    keys = client_keys(args.database_url, args.concurrency)
    body = json.dumps({"duration_hours": 1}).encode()
    unbooked = iter(gpu_ids)
    health = itertools.repeat(("GET", "/health", None))
    hot = ("POST", f"/v1/marketplace/gpu/{gpu_ids[-1]}/book", body)

    def next_booking() -> tuple[str, str, bytes] | None:
        gpu = next(unbooked, None)
        return None if gpu is None else ("POST", f"/v1/marketplace/gpu/{gpu}/book", body)

    def key(i: int) -> str:
        return keys[i]

    scenarios = [
        ("/health", lambda: next(health), ""),
        ("book, a different GPU each time", next_booking, key),
        ("book, one hot GPU (1 x 201, rest 409)", lambda: hot, key),
    ]
    with coordinator(args.database_url, workers=workers, admin_key=ADMIN_KEY) as base:
        print(f"\n{workers} server processes\n\n{HEADER}")
        for name, requests, api_key in scenarios:
            result = run_load(
                name,
                base,
                requests,  # type: ignore[arg-type]
                concurrency=args.concurrency,
                seconds=args.seconds,
                api_key=api_key,
            )
            print(result.row(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--gpus", type=int, default=40_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    os.environ["AITBC_HEARTBEAT_TIMEOUT_SECONDS"] = "86400"
    print(
        f"Machine: {machine()}; PostgreSQL; concurrency {args.concurrency}; "
        f"{args.seconds:.0f} s per scenario"
    )
    for workers in args.workers:
        run(args, workers)


if __name__ == "__main__":
    main()
