"""The booking transaction itself, two versions side by side: ``bookings.service.book``
through the store, in-process, with no HTTP, server or load generator between the
measurement and the database.

    .venv/bin/python bench/book_in_process.py --against 3b061f1 [--rounds 5]
        [--bookings 1500] [--concurrency 20] [--clients 5]

Each version books on a PostgreSQL database of its own, seeded alike, in a fresh interpreter
per turn with its own ``src`` first on the path; the versions' order alternates between
rounds, and each turn books GPUs no earlier turn booked. ``--clients`` few clients under
``--concurrency`` concurrent transactions make the bookings contend for the clients'
accounts, the rows every booking of a client locks. The row reports each version's median
bookings per second and the checkout's share of the earlier one's.

Why in-process: on this shared 2-core machine the HTTP side-by-side (bench/side_by_side.py)
gave one and the same commit 150 % of itself in an A/A run of its bookings row, so a change
to the booking's statements is judged here."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import harness
from run import database
from seed import seed_clients, seed_gpus
from side_by_side import Version, worktree


def _turn(version: Version, url: str, ids: Path, start: int, args: argparse.Namespace) -> float:
    command = [
        sys.executable, __file__, "--worker", "--url", url, "--ids", str(ids),
        "--start", str(start), "--bookings", str(args.bookings),
        "--concurrency", str(args.concurrency), "--clients", str(args.clients),
    ]  # fmt: skip
    done = subprocess.run(
        command,
        env=os.environ | {"PYTHONPATH": str(version.src)},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.split()[-1])


def _work(args: argparse.Namespace) -> None:
    """One turn, in this interpreter: book ``--bookings`` GPUs from ``--start``; prints the
    bookings per second."""
    import time
    from datetime import UTC, datetime

    from aitbc.bookings import service
    from aitbc.config import Settings
    from aitbc.store.store import Store

    ids = Path(args.ids).read_text().split()[args.start : args.start + args.bookings]

    async def run() -> float:
        store = Store(args.url)
        await store.open()
        settings, now = Settings(), datetime.now(UTC)
        gate = asyncio.Semaphore(args.concurrency)

        async def book(i: int, gpu_id: str) -> None:
            wanted = service.BookingRequest(
                gpu_id=gpu_id, client_id=f"perf-client-{i % args.clients}", seconds=3600
            )
            async with gate:
                await store.write(
                    lambda conn: service.book(conn, wanted, now=now, settings=settings)
                )

        try:
            started = time.perf_counter()
            await asyncio.gather(*(book(i, g) for i, g in enumerate(ids)))
            return len(ids) / (time.perf_counter() - started)
        finally:
            await store.close()

    print(f"{asyncio.run(run()):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bookings", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _work(args)
        return
    if not args.against:
        parser.error("--against is required")
    with tempfile.TemporaryDirectory() as tmp, worktree(args.against, Path(tmp)) as old:
        workdir = Path(tmp)
        versions = [Version("earlier", old / "src"), Version("this", harness.ROOT / "src")]
        seeded: dict[str, tuple[str, Path]] = {}
        for v in versions:
            url = database("postgresql", f"aitbc_bip_{v.name}", workdir)
            v.migrate(url)
            ids = seed_gpus(url, gpus=args.bookings * (args.rounds + 1))
            seed_clients(url, count=max(args.clients, 1))
            path = workdir / f"{v.name}.ids"
            path.write_text("\n".join(ids))
            seeded[v.name] = (url, path)
        rates: dict[str, list[float]] = {v.name: [] for v in versions}
        try:
            for r in range(args.rounds):
                for v in versions if r % 2 == 0 else versions[::-1]:
                    url, path = seeded[v.name]
                    rates[v.name].append(_turn(v, url, path, r * args.bookings, args))
        finally:
            for url, _ in seeded.values():
                harness.drop_database(url)
    old_rate, new_rate = (statistics.median(rates[v.name]) for v in versions)
    print(harness.machine())
    print(
        f"bookings in-process, PostgreSQL, {args.concurrency} concurrent, {args.clients} "
        f"clients: earlier {old_rate:.0f}/s, this {new_rate:.0f}/s, "
        f"{new_rate / old_rate:.0%} (each round: earlier {rates['earlier']}, this {rates['this']})"
    )


if __name__ == "__main__":
    main()
