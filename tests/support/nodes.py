"""Server processes for the property tests: each on a port of its own, on one database,
started, killed (kill -9) and started again by the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx

from tests.support.api import ADMIN_KEY
from tests.support.waiting import free_port


class Node:
    """One server process on a port of its own, which the test may kill and start again."""

    def __init__(self, database_url: str, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = (
            os.environ
            | {
                "AITBC_ADMIN_KEY": ADMIN_KEY,
                "AITBC_SWEEP_INTERVAL_SECONDS": "0.3",
                "AITBC_HEARTBEAT_TIMEOUT_SECONDS": "2",
                "AITBC_OUTAGE_GRACE_SECONDS": "2",
                "AITBC_WEBHOOK_ALLOW_PRIVATE": "true",
                "AITBC_WEBHOOK_TIMEOUT_SECONDS": "1",
                "AITBC_WEBHOOK_RETRY_SECONDS": "0.3",
                "AITBC_LOG_LEVEL": "warning",
            }
            | {f"AITBC_{name.upper()}": value for name, value in settings.items()}
        )
        self._argv = [sys.executable, "-m", "aitbc", "serve", "--no-migrate"]
        self._argv += ["--port", str(self.port), "--database-url", database_url]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self._argv, env=self._env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
