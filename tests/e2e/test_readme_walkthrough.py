"""The README's walk-through, run as it is written: its `aitbc` lines, in order, against a
real server started as the README starts it (the admin key read from what the server prints
on first start), with the miner's agent running in the background as the README says.

The placeholders are filled from what earlier commands printed (the keys, a GPU's and a
job's id); each command runs with `--output json` so that the test can read them, and the
two that ask first (a bid, deregistering) with `--yes`. The server's heartbeat timeout is 3
seconds and the agent heartbeats every second (its AITBC_AGENT_HEARTBEAT_SECONDS), so that
"the GPUs stay online while the agent runs" is checked in seconds rather than minutes. SQLite
only: it checks the README, not the database."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import PG_URL
from tests.support.waiting import free_port, until

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="checks the README; SQLite is enough")
AITBC = str(Path(sys.executable).parent / "aitbc")
README = Path(__file__).resolve().parents[2] / "README.md"
ASKS = ("marketplace bid", "miner deregister")  # they ask first; --yes answers


def walkthrough() -> list[str]:
    """The walk-through's command lines (comments and shell set-up left out)."""
    text = README.read_text()
    section = text[text.index("## Walk-through") :]
    block = section[section.index("```sh\n") + 6 : section.index("```", section.index("```sh") + 5)]
    lines = []
    for raw in block.splitlines():
        line = raw.split("   #", 1)[0].strip()
        if line and not line.startswith("#") and "aitbc " in line and "export " not in line:
            lines += [part.strip() for part in line.split(";")]
    return lines


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    """The server as the README starts it; (its URL, the admin key it printed, the env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AITBC_")}
    env |= {"HOME": str(tmp_path), "AITBC_HEARTBEAT_TIMEOUT_SECONDS": "3"}
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [AITBC, "serve", "--port", str(port)], env=env, stdout=out, stderr=out, cwd=tmp_path
        )
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: "first admin API key" in log.read_text(), 30, "the admin key printed")
        until(lambda: _answers(url), 30, "the server")
        key = re.search(r"store it now\): (\S+)", log.read_text())
        assert key is not None, log.read_text()
        yield url, key.group(1), env | {"AITBC_URL": url}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_readme_walkthrough_runs_and_its_gpus_stay_online(
    served: tuple[str, str, dict[str, str]], tmp_path: Path
) -> None:
    url, admin, env = served
    found: dict[str, str] = {"<the admin key printed on first start>": admin}
    agent: subprocess.Popen[bytes] | None = None

    def run(line: str) -> Any:
        keyed = re.match(r"AITBC_API_KEY=(<[^>]+>) (.*)", line)
        key, command = (found[keyed.group(1)], keyed.group(2)) if keyed else (admin, line)
        for placeholder, value in found.items():
            command = command.replace(placeholder, value)
        target = None
        if " > " in command:
            command, target = (part.strip() for part in command.split(" > "))
        argv = shlex.split(command)
        assert argv[0] == "aitbc", line
        words = " ".join(argv[1:3])
        extra = ["--yes"] if any(words.startswith(a) for a in ASKS) else []
        done = subprocess.run(
            [AITBC, "--output", "json", *argv[1:], *extra],
            env=env | {"AITBC_API_KEY": key},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        if target is not None:
            (tmp_path / target).write_text(done.stdout)
            return done.stdout
        return json.loads(done.stdout) if done.stdout.strip().startswith(("{", "[")) else None

    def completed(status: str) -> bool:
        return bool(run(status)["state"] == "completed")

    for line in walkthrough():
        if "miner run" in line:  # the second shell: the agent, in the background
            miner = shlex.split(re.sub(r"^AITBC_API_KEY=<[^>]+> ", "", line))
            agent = subprocess.Popen(
                [AITBC, *miner[1:]],
                env=env
                | {"AITBC_API_KEY": found["<miner key>"], "AITBC_AGENT_HEARTBEAT_SECONDS": "1"},
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / "agent.log").open("w"),
                cwd=tmp_path,
            )
            until(lambda: bool(httpx.get(f"{url}/v1/marketplace/gpu/list").json()), 30, "its GPU")
            continue
        if "client status" in line:  # the job runs on the agent: its state, then its result
            until(partial(completed, line), 30, "the job done by the agent")
        shown = run(line)
        if "keys create --role miner" in line:
            found["<miner key>"] = shown["key"]
        elif "keys create --role client" in line:
            found["<client key>"] = shown["key"]
        elif "gpu list" in line:
            found["<gpu_id>"] = shown[0]["gpu_id"]
        elif "client submit" in line:
            found["<job_id>"] = shown["job_id"]
        elif "client status" in line:
            assert shown["result"] == {"prompt": "hi"}  # `cat`: the payload back
        elif "miner deregister" in line:
            assert shown["status"] == "offline"
        if "marketplace bid" in line:
            # The GPUs stay online while the agent runs: twice the heartbeat timeout later.
            time.sleep(6)
            gpu = httpx.get(f"{url}/v1/marketplace/gpu/{found['<gpu_id>']}").json()
            assert gpu["status"] == "booked", gpu  # the bid's booking, on a GPU online
    assert agent is not None, "the walk-through runs the miner's agent"
    assert "gpu_id,model,earned" in (tmp_path / "earnings.csv").read_text()
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(30) == 0
