"""Two versions of the coordinator in one run: the checkout and an earlier commit, measured in
turns on the same machine, so a change of structure is judged against what it replaced and
not against another moment of a shared machine.

    .venv/bin/python bench/side_by_side.py --against d145c10 [--rounds 3] [--seconds 4]
                                           [--only reads bookings] [--out FILE]

The earlier commit is checked out into a temporary git worktree and served by the same
interpreter with its own ``src`` first on PYTHONPATH; each version migrates a database of its
own, seeded alike. Every scenario runs once per version per round, the versions' order
alternating between rounds; a row reports each version's median over the rounds and the
checkout's share of the earlier one's. Needs what bench/run.py needs (wrk, pgbench,
PostgreSQL at 127.0.0.1:5432)."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import harness
import invariants
from harness import COORDINATOR_ENV, Load, server, wrk
from run import READS, database, read_paths, write_lines
from seed import seed_clients, seed_gpus


@dataclass(frozen=True)
class Version:
    name: str
    src: Path

    @property
    def env(self) -> dict[str, str]:
        return COORDINATOR_ENV | {"PYTHONPATH": str(self.src)}

    def serve(self, url: str, workers: int) -> list[str]:
        return [
            sys.executable, "-m", "aitbc", "serve", "--port", "{port}",
            "--workers", str(workers), "--database-url", url,
        ]  # fmt: skip

    def migrate(self, url: str) -> None:
        subprocess.run(
            [sys.executable, "-c", f"from aitbc.migrate import upgrade; upgrade({url!r})"],
            env=os.environ | {"PYTHONPATH": str(self.src)},
            check=True,
            cwd=self.src,
        )


@contextmanager
def worktree(commit: str, workdir: Path) -> Iterator[Path]:
    path = workdir / "earlier"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), commit],
        cwd=harness.ROOT,
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)],
            cwd=harness.ROOT,
            check=False,
            capture_output=True,
        )


def _seeded(
    version: Version, kind: str, name: str, workdir: Path, gpus: int
) -> tuple[str, list[str]]:
    url = database(kind, name, workdir)
    version.migrate(url)
    return url, seed_gpus(url, gpus=gpus)


def _turns(rounds: int, versions: list[Version]) -> Iterator[list[Version]]:
    for i in range(rounds):
        yield versions if i % 2 == 0 else versions[::-1]


def _row(label: str, loads: dict[str, list[Load]], old: str, new: str) -> list[str]:
    rps = {name: statistics.median(load.rps for load in runs) for name, runs in loads.items()}
    p99 = {name: statistics.median(load.p99_ms for load in runs) for name, runs in loads.items()}
    errors = {name: sum(load.errors for load in runs) for name, runs in loads.items()}
    share = rps[new] / rps[old] if rps[old] else 0.0
    marks = {n: f" ({errors[n]} errors)" if errors[n] else "" for n in loads}
    return [
        label,
        f"{rps[old]:,.0f}{marks[old]}",
        f"{rps[new]:,.0f}{marks[new]}",
        f"{share * 100:.0f} %",
        "met" if share >= 0.9 and not errors[new] else "**not met**",
        f"{p99[old]:.1f}",
        f"{p99[new]:.1f}",
    ]


HEADER = ["scenario", "earlier req/s", "this req/s", "this / earlier", "≥ 90 %",
          "earlier p99 ms", "this p99 ms"]  # fmt: skip


def reads(args: argparse.Namespace, versions: list[Version], workdir: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    for kind in args.databases:
        seeded = {
            v.name: _seeded(v, kind, f"aitbc_sbs_reads_{v.name}", workdir, 10_000) for v in versions
        }
        key = {
            v.name: seed_clients(seeded[v.name][0], count=1, prefix="reader")[0] for v in versions
        }
        files = {
            v.name: {
                name: write_lines(workdir, f"{v.name}-{kind}-paths-{i}.txt", lines)
                for i, (name, lines) in enumerate(read_paths(seeded[v.name][1]).items())
            }
            for v in versions
        }
        for workers in args.workers:
            with ExitStack() as stack:
                bases = {
                    v.name: stack.enter_context(server(v.serve(seeded[v.name][0], workers), v.env))[
                        0
                    ]
                    for v in versions
                }
                for v in versions:  # warm-up, not measured
                    for name in ("GPU details", "list, page of 20"):
                        wrk(bases[v.name], "read.lua", [files[v.name][name]], seconds=1)
                for name, _, _ in READS:
                    for who in ("anonymous", "client key"):
                        loads: dict[str, list[Load]] = {v.name: [] for v in versions}
                        for turn in _turns(args.rounds, versions):
                            for v in turn:
                                wrk_args = [files[v.name][name]]
                                if who == "client key":
                                    wrk_args.append(key[v.name])
                                loads[v.name].append(
                                    wrk(bases[v.name], "read.lua", wrk_args, seconds=args.seconds)
                                )
                        label = f"{kind}, {workers} process(es): {name}, {who}"
                        rows.append(_row(label, loads, versions[0].name, versions[1].name))
                        print(" | ".join(rows[-1]), flush=True)
        if kind == "postgresql":
            for v in versions:
                harness.drop_database(seeded[v.name][0])
    return rows


def bookings(args: argparse.Namespace, versions: list[Version], workdir: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    checks: list[str] = []
    # Each turn books GPUs no other turn booked: enough of them that a turn never runs out
    # (a GPU booked twice is a 409, not a measure of speed).
    for kind, workers, gpus in (("postgresql", 2, 40_000), ("sqlite", 1, 60_000)):
        if kind not in args.databases:
            continue
        seeded = {
            v.name: _seeded(v, kind, f"aitbc_sbs_book_{v.name}", workdir, gpus) for v in versions
        }
        connections = 50 if kind == "postgresql" else harness.CONNECTIONS
        threads = 50 if kind == "postgresql" else 2
        plan: dict[str, Callable[[str, int], Load]] = {}
        for v in versions:
            url, ids = seeded[v.name]
            keys = write_lines(workdir, f"{v.name}-{kind}-keys.txt", seed_clients(url, count=50))
            shuffled = ids[:]
            random.Random(5).shuffle(shuffled)
            # Each round books GPUs no earlier round booked.
            share = len(shuffled) // (args.rounds + 1)
            slices = [
                write_lines(
                    workdir, f"{v.name}-{kind}-gpus-{r}.txt", shuffled[r * share : (r + 1) * share]
                )
                for r in range(args.rounds + 1)
            ]

            def run(
                base: str,
                turn: int,
                slices: list[str] = slices,
                keys: str = keys,
                connections: int = connections,
                threads: int = threads,
            ) -> Load:
                return wrk(
                    base, "book.lua", [slices[turn], keys], seconds=args.booking_seconds,
                    connections=connections, threads=threads,
                )  # fmt: skip

            plan[v.name] = run
        with ExitStack() as stack:
            bases = {
                v.name: stack.enter_context(server(v.serve(seeded[v.name][0], workers), v.env))[0]
                for v in versions
            }
            loads: dict[str, list[Load]] = {v.name: [] for v in versions}
            for v in versions:  # warm-up on a slice of its own, not measured
                try:
                    plan[v.name](bases[v.name], args.rounds)
                except RuntimeError as exc:
                    print(f"warm-up: {exc}", file=sys.stderr)
            for turn_no, turn in enumerate(_turns(args.rounds, versions)):
                for v in turn:
                    loads[v.name].append(plan[v.name](bases[v.name], turn_no))
        label = f"{kind}, {workers} process(es): book a different GPU each time"
        rows.append(_row(label, loads, versions[0].name, versions[1].name))
        print(" | ".join(rows[-1]), flush=True)
        for v in versions:
            checks.append(f"{kind} {v.name}: {invariants.check(seeded[v.name][0])}")
            if kind == "postgresql":
                harness.drop_database(seeded[v.name][0])
    rows.append(["after the runs: " + "; ".join(checks), "", "", "", "", "", ""])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4, help="per read scenario and turn")
    parser.add_argument("--booking-seconds", type=float, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--only", nargs="+", choices=["reads", "bookings"], default=["reads", "bookings"]
    )
    parser.add_argument(
        "--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    this = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        f"Measured {stamp} on {harness.machine()}: this checkout ({this}, with its uncommitted "
        f"changes) against {args.against}, {args.rounds} rounds in alternating order, "
        f"{args.seconds:.0f} s per read turn, {args.booking_seconds:.0f} s per booking turn; "
        f"medians over the rounds.\n"
    ]
    print(sections[0], flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="aitbc-sbs-") as tmp,
        worktree(args.against, Path(tmp)) as old,
    ):
        versions = [Version("earlier", old / "src"), Version("this", harness.ROOT / "src")]
        for part in args.only:
            rows = (reads if part == "reads" else bookings)(args, versions, Path(tmp))
            lines = [f"### {part.capitalize()}, side by side", "", "| " + " | ".join(HEADER) + " |"]
            lines.append(
                "|" + "|".join("---" if i == 0 else "---:" for i in range(len(HEADER))) + "|"
            )
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            sections.append("\n".join(lines) + "\n")
            print(sections[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(sections))


if __name__ == "__main__":
    main()
