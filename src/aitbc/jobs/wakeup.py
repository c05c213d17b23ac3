"""Waking long polls: a miner's waiting poll returns as soon as a job is assigned to it, on
whichever server process the assignment happened (store.signals)."""

from __future__ import annotations

from aitbc.store.conn import Conn
from aitbc.store.signals import JOBS

CHANNEL = JOBS


async def job_assigned(conn: Conn, miner_id: str) -> None:
    """Called in the transaction that assigned a job to ``miner_id``."""
    await conn.notify(CHANNEL, miner_id)
