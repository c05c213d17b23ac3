"""The events of a job's life (events.log): to its client and, once it has one, its miner.
An event carries the job's state, not its payload or result (``GET /v1/jobs/{id}`` has
those)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aitbc.bookings.records import BookingRecord
from aitbc.events.log import emit
from aitbc.jobs.queries import JobRecord
from aitbc.store.conn import Conn
from aitbc.store.values import iso


def view(job: JobRecord) -> dict[str, Any]:
    """The job as the change just left it."""
    return {
        "job_id": job.id,
        "state": job.state,
        "type": job.job_type,
        "client_id": job.client_id,
        "gpu_id": job.gpu_id,
        "miner_id": job.miner_id,
        "booking_id": job.booking_id,
        "error": job.error,
        "created_at": iso(job.created_at),
        "expires_at": iso(job.expires_at),
        "assigned_at": iso(job.assigned_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }


def job(conn: Conn, kind: str, record: JobRecord, *, now: datetime) -> None:
    """``job.<kind>`` to the job's client and its miner, if it has one."""
    emit(
        conn,
        f"job.{kind}",
        subject_id=record.id,
        data=view(record),
        owners=(record.client_id, record.miner_id),
        at=now,
    )


def lost(
    conn: Conn,
    job_id: str,
    state: str,
    record: BookingRecord,
    *,
    now: datetime,
    error: str | None = None,
) -> None:
    """The job lost its booking's GPU (jobs.riders): ``job.requeued`` (it waits for another)
    or ``job.failed`` (its time-to-live has run out), to its client and that GPU's miner."""
    emit(
        conn,
        f"job.{state}",
        subject_id=job_id,
        data={
            "job_id": job_id,
            "state": "queued" if state == "requeued" else "failed",
            "client_id": record.client_id,
            "lost_gpu_id": record.gpu_id,
            "lost_booking_id": record.id,
            "error": error,
        },
        owners=(record.client_id, record.miner_id),
        at=now,
    )
