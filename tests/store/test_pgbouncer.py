"""Nodes behind PgBouncer in transaction mode (``AITBC_DB_POOLER``): connections set nothing
at start and keep no prepared statements, LISTEN goes over a direct connection of its own,
and bookings, reads and job wake-ups work as without it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from aitbc.app import create_app
from aitbc.config import Settings
from aitbc.kit.clock import ManualClock
from tests.support.api import PG_URL, Api
from tests.support.market import deposit
from tests.support.waiting import free_port, until

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
pytestmark = pytest.mark.skipif(
    not PG_URL or not os.path.exists(PGBOUNCER), reason="PostgreSQL behind PgBouncer"
)


@pytest.fixture
def bouncer(database_url: str) -> Iterator[str]:
    """PgBouncer in transaction mode in front of the test database; its URL."""
    direct = make_url(database_url)
    port = free_port()
    # A folder of its own that the user it runs as can read (pytest's are the runner's).
    tmp_path = Path(tempfile.mkdtemp(prefix="aitbc-pgbouncer-"))
    tmp_path.chmod(0o777)
    (tmp_path / "users.txt").write_text(f'"{direct.username}" ""\n')
    (tmp_path / "pgbouncer.ini").write_text(
        f"[databases]\n* = host={direct.host} port={direct.port or 5432}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = trust\n"
        f"auth_file = {tmp_path / 'users.txt'}\npool_mode = transaction\nunix_socket_dir =\n"
        f"default_pool_size = 4\nlogfile = {tmp_path / 'pgbouncer.log'}\n"
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (tmp_path / name).chmod(0o644)
    as_user = ["-u", "postgres"] if os.geteuid() == 0 else []  # it will not run as root
    process = subprocess.Popen([PGBOUNCER, *as_user, str(tmp_path / "pgbouncer.ini")])
    try:
        until(lambda: _accepts(port), 10, "PgBouncer to start")
        yield direct.set(port=port).render_as_string(hide_password=False)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_bookings_and_reads_work_through_pgbouncer_in_transaction_mode(
    bouncer: str, settings: Settings, database_url: str
) -> None:
    through = settings.model_copy(
        update={"database_url": bouncer, "db_pooler": True, "listen_database_url": database_url}
    )
    clock = ManualClock()
    with TestClient(create_app(through, clock=clock), raise_server_exceptions=False) as client:
        api = Api(client=client, clock=clock)
        miner = api.key("miner", "m1")
        renter = api.key("client", "c1")
        deposit(api, "c1", "1000")
        gpus = [api.register_gpu(miner, name=f"RTX 4090 #{i}") for i in range(5)]
        for _ in range(3):  # more transactions than the pooler has server connections
            for gpu in gpus:
                booked = api.call(
                    "POST", f"/v1/marketplace/gpu/{gpu}/book", renter, json={"duration_hours": 1}
                )
                assert booked.status_code == 201, booked.text
                released = api.call("POST", f"/v1/marketplace/gpu/{gpu}/release", renter)
                assert released.status_code == 200, released.text
        listed = api.call("GET", "/v1/marketplace/gpu/list", renter)
        assert listed.status_code == 200 and len(listed.json()) == 5
        until(
            lambda: api.call("GET", "/health/ready").json()["job_wakeups"] == "listening",
            5,
            "listening on the direct connection",
        )


def test_behind_a_pooler_without_a_listen_url_polls_wait_out_their_time(
    bouncer: str, settings: Settings
) -> None:
    through = settings.model_copy(update={"database_url": bouncer, "db_pooler": True})
    with TestClient(create_app(through, clock=ManualClock())) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["job_wakeups"] == "off"
