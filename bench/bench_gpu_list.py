"""GPU list throughput and latency over 10,000 GPUs, beside the same server's /health.

.venv/bin/python bench/bench_gpu_list.py [--database-url URL] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import tempfile

from loadgen import HEADER, coordinator, machine, run_load
from seed import seed_gpus

from aitbc.migrate import upgrade

ADMIN_KEY = "bench-admin-key-0123456789abcdef0123456789"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="")
    parser.add_argument("--gpus", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='aitbc-bench-')}/bench.db"
    upgrade(url)
    gpu_ids = seed_gpus(url, gpus=args.gpus)
    os.environ["AITBC_HEARTBEAT_TIMEOUT_SECONDS"] = "86400"
    rng = random.Random(1)
    list_path = "/v1/marketplace/gpu/list"
    scenarios = {
        "/health": "/health",
        "list limit=20": f"{list_path}?limit=20",
        "list available, model=4090, memory_min=24, price_max=0.5": (
            f"{list_path}?available=true&model=4090&memory_min=24&price_max=0.5&limit=20"
        ),
        "list model=a100, sort=rating, limit=100": f"{list_path}?model=a100&sort=rating&limit=100",
        "list region=eu-west, offset=2000": f"{list_path}?region=eu-west&offset=2000",
    }
    print(
        f"Machine: {machine()}; database: {url.split(':')[0]}; {args.gpus:,} GPUs; "
        f"concurrency {args.concurrency}; {args.seconds:.0f} s per scenario\n"
    )
    for workers in args.workers:
        with coordinator(url, workers=workers, admin_key=ADMIN_KEY) as base:
            print(f"\n{workers} server process(es)\n\n{HEADER}")
            for name, path in scenarios.items():
                requests = itertools.repeat(("GET", path, None))
                result = run_load(
                    name,
                    base,
                    lambda r=requests: next(r),
                    concurrency=args.concurrency,
                    seconds=args.seconds,
                )
                print(result.row(), flush=True)
            details = run_load(
                "details by id",
                base,
                lambda: ("GET", f"/v1/marketplace/gpu/{rng.choice(gpu_ids)}", None),
                concurrency=args.concurrency,
                seconds=args.seconds,
            )
            print(details.row(), flush=True)


if __name__ == "__main__":
    main()
