"""How long the ``aitbc`` CLI takes to start, beside ``python -c pass`` in the same run.

    .venv/bin/python bench/cli_start.py [--runs 15] [--against <commit>]

Each command runs ``--runs`` times, alternating with the others; the median wall time is
reported with its ratio to the interpreter's own start. ``gpu list`` asks a coordinator on
SQLite (40 GPUs) for a page. The goals: ``--version`` and ``--help`` under 0.3 s, a list
under 0.5 s. ``--against`` also runs the same commands with an earlier commit's CLI (a git
worktree with its own virtual environment is not needed: the earlier ``src`` is put first
on ``PYTHONPATH``)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from harness import ADMIN_KEY, BIN, COORDINATOR_ENV, ROOT, coordinator, machine, server

GOALS = {"--version": 0.3, "--help": 0.3, "marketplace gpu list": 0.5}


def _timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - began


def _seed(base: str) -> None:
    key = httpx.post(
        f"{base}/v1/admin/api-keys",
        headers={"X-Api-Key": ADMIN_KEY},
        json={"role": "miner", "owner_id": "m1"},
    ).json()["key"]
    for n in range(40):
        gpu = {"name": f"RTX {4000 + n}", "memory_gb": 24, "price_per_hour": "1"}
        made = httpx.post(
            f"{base}/v1/marketplace/gpu/register", headers={"X-Api-Key": key}, json={"gpu": gpu}
        )
        made.raise_for_status()


def _earlier_src(commit: str, into: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), commit],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--against", default=None, help="An earlier commit, run beside.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="aitbc-cli-start-"))
    url = f"sqlite:///{workdir / 'cli.db'}"
    variants = {"this checkout": dict(os.environ)}
    if args.against:
        src = _earlier_src(args.against, workdir / "earlier")
        variants[f"at {args.against}"] = os.environ | {"PYTHONPATH": str(src)}
    with server(coordinator(url, 1), COORDINATOR_ENV) as (base, _):
        _seed(base)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "--version": [str(BIN / "aitbc"), "--version"],
            "--help": [str(BIN / "aitbc"), "--help"],
            "marketplace gpu list": [
                str(BIN / "aitbc"), "--url", base, "marketplace", "gpu", "list", "-o", "json",
            ],
        }  # fmt: skip
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.runs):
            for variant, env in variants.items():
                for name, argv in commands.items():
                    times.setdefault((variant, name), []).append(_timed(argv, env))
    floor = statistics.median(times[("this checkout", "python -c pass")])
    print("### The CLI's start\n")
    print("| command | CLI | median s | x `python -c pass` | goal |")
    print("|---|---|---:|---:|---|")
    for (variant, name), found in times.items():
        if name == "python -c pass" and variant != "this checkout":
            continue
        median = statistics.median(found)
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"< {goal} s: {'met' if median < goal else 'NOT met'}"
        print(f"| {name} | {variant} | {median:.3f} | {median / floor:.1f} | {verdict} |")
    print(f"\n{machine()}; {args.runs} runs each, alternating; the list of 40 GPUs on SQLite.")
    if args.against:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(workdir / "earlier")],
            check=False,
        )


if __name__ == "__main__":
    main()
