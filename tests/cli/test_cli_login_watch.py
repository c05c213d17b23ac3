"""``whoami``, ``login`` and ``config init|show`` (the config file they write is the one the
CLI then reads), and ``--watch`` on bookings, jobs and a GPU: refreshed in place on a
terminal, one snapshot after another otherwise, stopped by --count or Ctrl-C."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aitbc.cli import watch as cli_watch
from aitbc.cli.main import cli
from tests.cli.cli_support import Cli, api_error, isolate, ok_json, ok_text, usage_error
from tests.jobs.slice_support import booking, submitted
from tests.support.api import Api
from tests.support.market import Market


@pytest.fixture(autouse=True)
def config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate(monkeypatch, tmp_path)


@pytest.fixture
def run(live_server: str) -> Cli:
    return Cli(live_server)


def _no_flags(*args: str, stdin: str | None = None) -> str:
    """The CLI with neither --url nor --api-key: all it knows comes from the config file."""
    return ok_text(CliRunner().invoke(cli, list(args), input=stdin))


# --- whoami, login, config ----------------------------------------------------------------


def test_whoami(run: Cli, api: Api) -> None:
    key = api.key("client", "c-9")
    assert run.json(key, "whoami") == {
        "owner_id": "c-9",
        "role": "client",
        "key_id": run.json(key, "whoami")["key_id"],
    }
    assert ok_text(run(key, "whoami", "-q")) == "c-9\n"
    lines = ok_text(run(key, "whoami")).splitlines()
    assert lines[0].split() == ["owner_id", "c-9"] and lines[1].split() == ["role", "client"]
    api_error(run("", "whoami"), "HTTP", 401)


def test_login_checks_the_key_and_saves_it(
    run: Cli, api: Api, config_file: Path, live_server: str
) -> None:
    key = api.key("client", "c-1")
    api_error(run(None, "login", "--api-key", "not-a-key"), "HTTP", 401)
    assert not config_file.exists()

    result = run(None, "login", "--api-key", key)
    assert ok_json(run(None, "login", "--api-key", key, "-o", "json"))["owner_id"] == "c-1"
    assert "logged in as c-1 (client)" in result.stderr
    assert yaml.safe_load(config_file.read_text()) == {
        "coordinator_url": live_server,
        "api_key": key,
    }
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600

    assert "c-1" in _no_flags("whoami")  # the file alone is enough now


def test_login_asks_for_the_key_and_keeps_other_settings(
    run: Cli, api: Api, config_file: Path, live_server: str
) -> None:
    config_file.parent.mkdir(parents=True)
    config_file.write_text(f"coordinator_url: {live_server}\napi_key: old\nextra: kept\n")
    key = api.key("miner", "m-3")

    result = run(None, "login", stdin=f"{key}\n")
    assert result.exit_code == 0, result.output
    assert key not in result.stdout  # typed hidden, never echoed
    saved = yaml.safe_load(config_file.read_text())
    assert saved == {"coordinator_url": live_server, "api_key": key, "extra": "kept"}


def test_config_init_writes_the_file_and_show_reads_it(
    config_file: Path, live_server: str, api: Api
) -> None:
    key = api.key("client", "c-5")
    written = _no_flags("config", "init", "-o", "json", stdin=f"{live_server}\n{key}\n")
    assert key not in written and key[:8] in written
    assert yaml.safe_load(config_file.read_text()) == {
        "coordinator_url": live_server,
        "api_key": key,
    }
    assert "c-5" in _no_flags("whoami")

    shown = yaml.safe_load(_no_flags("config", "show", "-o", "yaml"))
    assert shown == {
        "config_file": str(config_file),
        "config_file_exists": True,
        "coordinator_url": live_server,
        "api_key": f"{key[:8]}...",
    }

    again = CliRunner().invoke(cli, ["config", "init", "--url", "http://x:1", "--api-key", ""])
    assert again.exit_code == 1 and "--force" in again.output
    assert yaml.safe_load(config_file.read_text())["api_key"] == key
    _no_flags("config", "init", "--url", "http://x:1/", "--api-key", "", "--force")
    assert yaml.safe_load(config_file.read_text()) == {
        "coordinator_url": "http://x:1",
        "api_key": "",
    }

    bad = CliRunner().invoke(cli, ["config", "init", "--url", "x:1", "--api-key", "", "--force"])
    usage_error(bad, "http://")


# --- --watch ------------------------------------------------------------------------------


def _pauses(monkeypatch: pytest.MonkeyPatch, *steps: Callable[[], None]) -> list[float]:
    """Replace the wait between refreshes: run each step in turn, then press Ctrl-C."""
    waits: list[float] = []
    todo = list(steps)

    def pause(seconds: float) -> None:
        waits.append(seconds)
        if not todo:
            raise KeyboardInterrupt
        todo.pop(0)()

    monkeypatch.setattr(cli_watch, "pause", pause)
    return waits


def test_watch_a_booking_until_ctrl_c(
    run: Cli, api: Api, market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = market.gpu()
    made = market.book("c-1", gpu)
    key = market.clients["c-1"]
    release = lambda: api.call("POST", f"/v1/bookings/{made['booking_id']}/release", key)  # noqa: E731
    waits = _pauses(monkeypatch, release)

    result = run(key, "bookings", "show", made["booking_id"], "--watch", "--interval", "0.5")

    assert result.exit_code == 0, result.output
    assert waits == [0.5, 0.5]
    snapshots = result.stdout.split("every 0.5s, refresh ")[1:]
    assert len(snapshots) == 2
    fields = [dict([*li.split(None, 1), ""][:2] for li in s.splitlines()[1:]) for s in snapshots]
    assert [f["status"].strip() for f in fields] == ["active", "cancelled"]
    assert "stopped watching" in result.stderr
    assert booking(api, key, made["booking_id"])["status"] == "cancelled"


def test_watch_bookings_jobs_and_a_gpu_for_a_count(
    run: Cli, api: Api, market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = market.gpu()
    market.book("c-1", gpu)
    key = market.clients["c-1"]
    job = submitted(api, key)
    waits = _pauses(monkeypatch, *[lambda: None] * 10)

    listed = ok_text(run(key, "bookings", "list", "--watch", "--count", "3", "--interval", "0.2"))
    assert listed.count("every 0.2s, refresh ") == 3 and waits == [0.2, 0.2]
    assert listed.splitlines()[1].split()[:4] == ["booking_id", "gpu_id", "status", "start_time"]

    jobs = ok_text(run(key, "client", "jobs", "-w", "--count", "2"))
    assert jobs.count("refresh ") == 2 and job["job_id"] in jobs
    one = ok_text(run(key, "client", "status", job["job_id"], "-w", "--count", "1"))
    assert one.count("refresh ") == 1 and job["job_id"] in one
    shown = ok_text(run(None, "marketplace", "gpu", "details", gpu, "--watch", "--count", "1"))
    assert "refresh 1 at" in shown and gpu in shown and "booked" in shown

    usage_error(run(key, "bookings", "list", "--watch", "-o", "json"), "--watch")
    usage_error(run(key, "bookings", "list", "--watch", "--interval", "0"), "--interval")


def test_watch_on_a_terminal_redraws_in_place(
    run: Cli, api: Api, market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = market.gpu()
    market.book("c-1", gpu)
    key = market.clients["c-1"]
    release = lambda: api.call("POST", f"/v1/marketplace/gpu/{gpu}/release", key)  # noqa: E731
    _pauses(monkeypatch, release)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "120")

    result = run(key, "bookings", "list", "--watch")

    assert result.exit_code == 0, result.output
    assert "\x1b[2K" in result.stdout and "\x1b[1A" in result.stdout  # erase and move up
    before, after = result.stdout.split("refresh 2", 1)
    assert "active" in before and "cancelled" in after and "active" not in after
