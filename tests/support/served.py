"""An app served over real HTTP from a thread of the test process, and a PostgreSQL database
of its own for a test that needs one beside the run's."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aitbc.app import drain
from aitbc.migrate import upgrade


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, until the block ends: its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("test server failed to start")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        drain(app)  # as SIGTERM would: long polls (a page's event feed) answer now
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def postgres_database(server_url: str, purpose: str, *, migrated: bool = True) -> Iterator[str]:
    """A new database on the PostgreSQL server of ``server_url`` (migrated, or empty for a
    test that migrates it itself); dropped after."""
    name = f"aitbc_{purpose}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(server_url).set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
