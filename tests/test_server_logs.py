"""`aitbc serve` says where it listens, logs each request (method, path, status, time) as text
or JSON lines, and says when it stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.api import ADMIN_KEY
from tests.support.waiting import free_port


def serve_once(tmp_path: Path, *flags: str) -> list[str]:
    """Start the server, make two requests, stop it with SIGTERM; its log lines. Without
    ``--data-dir`` among the flags, on an SQLite file of ``tmp_path``."""
    port = free_port()
    env = os.environ | {"AITBC_ADMIN_KEY": ADMIN_KEY, "AITBC_SWEEP_INTERVAL_SECONDS": "60"}
    env.pop("AITBC_DATABASE_URL", None)
    argv = [sys.executable, "-m", "aitbc", "serve", "--port", str(port), *flags]
    if "--data-dir" not in flags:
        argv += ["--database-url", f"sqlite:///{tmp_path / 'logs.db'}"]
    server = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/marketplace/gpu/nope").status_code == 404
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err.decode()
    return err.decode().splitlines()


def test_text_logs_say_where_each_request_and_the_stop(tmp_path: Path) -> None:
    lines = serve_once(tmp_path)
    text = "\n".join(lines)
    assert "aitbc coordinator on http://127.0.0.1:" in text, text
    assert any("GET /health 200" in line and " ms" in line for line in lines), text
    assert any("GET /v1/marketplace/gpu/nope 404" in line for line in lines), text
    assert "aitbc coordinator stopped" in lines[-1], text


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    lines = [line for line in serve_once(tmp_path, "--log-format", "json") if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is JSON
    requests = [e for e in entries if e.get("logger") == "aitbc.access"]
    health = next(e for e in requests if e["path"] == "/health")
    assert (health["method"], health["status"]) == ("GET", 200)
    assert isinstance(health["duration_ms"], float) and health["time"].endswith("Z")
    assert entries[-1]["message"] == "aitbc coordinator stopped"


@pytest.mark.parametrize("level", ["warning"])
def test_warning_level_leaves_requests_out(tmp_path: Path, level: str) -> None:
    lines = serve_once(tmp_path, "--log-level", level)
    assert not any("GET /health" in line for line in lines), lines
    [start] = [line for line in lines if "aitbc coordinator on" in line]
    assert " INFO " in start and "WARNING" not in start, start  # said, not warned


def test_data_dir_says_where_the_sqlite_file_is(tmp_path: Path) -> None:
    data = tmp_path / "my data"
    lines = serve_once(tmp_path, "--data-dir", str(data))
    [start] = [line for line in lines if "aitbc coordinator on" in line]
    assert f"database sqlite:///{data / 'coordinator.db'}" in start, start
    assert (data / "coordinator.db").is_file()
