"""Tables on an 80-column terminal: each row on one line, no word, number or time broken
across lines; the columns that do not fit are left out, the lowest priority first; times to
the minute. Through a real pseudo-terminal for `gpu list`, and with the terminal's width
set for the other lists."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest

from tests.cli.cli_support import Cli, isolate, ok_text
from tests.support.api import ADMIN_KEY, Api
from tests.support.market import Market, booked

ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\dZ")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def shop(api: Api, market: Market) -> dict[str, Any]:
    gpus = [
        market.gpu(name="RTX 4090 Ti Super", price_per_hour="0.5"),
        market.gpu(name="A100", memory_gb=80, price_per_hour="1.9"),
    ]
    market.beat()
    client = market.client("c-1", "100")
    made = [booked(api, client, gpu, 1) for gpu in gpus]
    job = api.call("POST", "/v1/jobs", client, json={"payload": {}, "ttl_seconds": 900})
    assert job.status_code == 201, job.text
    return {"client": client, "gpus": gpus, "bookings": made}


def on_a_terminal(argv: list[str], columns: int = 80) -> str:
    """What ``argv`` shows on a pseudo-terminal ``columns`` wide (colours taken out)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.DEVNULL, env=env
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the process ended and closed its side
            break
        if not chunk:
            break
        shown += chunk
    process.wait(timeout=60)
    os.close(leader)
    return ANSI.sub("", shown.decode()).replace("\r", "")


def rows_whole(shown: str, ids: list[str], width: int = 80) -> list[str]:
    """The table's lines, each within ``width``, each id on exactly one line."""
    lines = [line for line in shown.splitlines() if line.strip()]
    assert max(len(line) for line in lines) <= width, shown
    for found in ids:
        assert sum(found in line for line in lines) == 1, (found, shown)
    return lines


def test_gpu_list_fits_a_real_80_column_terminal(live_server: str, shop: dict[str, Any]) -> None:
    aitbc = str(Path(sys.executable).parent / "aitbc")
    shown = on_a_terminal([aitbc, "--url", live_server, "marketplace", "gpu", "list"])
    lines = rows_whole(shown, shop["gpus"])
    assert "RTX 4090 Ti Super" in shown  # the model whole, on its row
    header = lines[0].split()
    assert header[:4] == ["gpu_id", "model", "price_per_hour", "status"]
    assert "average_rating" not in header  # left out: the lowest priority that did not fit


@pytest.mark.parametrize(
    ("args", "key", "ids"),
    [
        (["marketplace", "orders"], "client", "orders"),
        (["bookings", "list"], "client", "bookings"),
        (["client", "jobs"], "client", None),
        (["marketplace", "offers"], None, None),
        (["admin", "keys", "list"], "admin", None),
    ],
)
def test_the_lists_fit_80_columns(
    live_server: str,
    shop: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    key: str | None,
    ids: str | None,
) -> None:
    if args[1] == "offers":
        assert Cli(live_server)(ADMIN_KEY, "admin", "sync-offers").exit_code == 0
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "80")
    caller = {"client": shop["client"], "admin": ADMIN_KEY, None: None}[key]
    shown = ANSI.sub("", ok_text(Cli(live_server)(caller, *args)))
    expected = {
        "orders": [b["order_id"] for b in shop["bookings"]],
        "bookings": [b["booking_id"] for b in shop["bookings"]],
        None: [],
    }[ids]
    lines = rows_whole(shown, expected)
    assert len(lines) >= 3, shown  # a header, its rule, a row at least
    for line in lines:  # a time is whole, to the minute, or not shown
        assert not re.search(r"\d\d:\d\d:\d\d", line), line
    assert all(TIME.fullmatch(t) for t in TIME.findall(shown))


def test_plain_output_puts_a_rule_exactly_under_each_heading(
    live_server: str, shop: dict[str, Any]
) -> None:
    shown = ok_text(Cli(live_server)(ADMIN_KEY, "admin", "keys", "list"))
    header, rule, *rows = shown.splitlines()
    for heading in re.finditer(r"\S+", header):  # each run of dashes starts under its heading
        dashes = re.match(r"-+", rule[heading.start() :])
        assert dashes is not None and dashes.end() >= len(heading.group()), (header, rule)
    runs = [m.span() for m in re.finditer(r"-+", rule)]
    assert [m.start() for m in re.finditer(r"\S+", header)] == [start for start, _ in runs]
    for row in rows:  # no value reaches past its column's rule
        for _start, end in runs:
            assert row[end : end + 1] in ("", " "), (row, rule)
