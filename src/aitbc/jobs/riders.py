"""The jobs domain's side of ``bookings.riders``: what becomes of a job whose booking ended
before the job did. Called in the transaction that ends the booking."""

from __future__ import annotations

from datetime import datetime

from aitbc.bookings.records import BookingRecord
from aitbc.bookings.riders import Held
from aitbc.jobs import announce
from aitbc.jobs.queries import JOB_COLUMNS, JobRecord
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Query
from aitbc.store.values import as_time

GPU_LOST = "The GPU went offline during the job and did not come back in time."
PREEMPTED = "The job's interruptible booking was preempted."
# The booking ended under the job: the job lost its GPU (with this error if it cannot wait).
_LOST = {"interrupted": GPU_LOST, "preempted": PREEMPTED}

_OWNER = Query("SELECT client_id FROM jobs WHERE id = $1")
# The booking's job, while it is assigned to the booking's GPU or running there.
_LIVE = (
    "SELECT id, state, expires_at FROM jobs "
    "WHERE id = $1 AND booking_id = $2 AND state IN ('assigned', 'running')"
)
_HOLD = Query(f"{_LIVE} FOR UPDATE SKIP LOCKED")
_SEE = Query(_LIVE)
# A job back in the queue: it waits for another GPU (until its time-to-live).
_REQUEUE = Query(
    "UPDATE jobs SET state = 'queued', gpu_id = NULL, miner_id = NULL, booking_id = NULL, "
    "assigned_at = NULL, started_at = NULL, claim_expires_at = NULL WHERE id = $1"
)
_FAIL = Query("UPDATE jobs SET state = 'failed', error = $2, finished_at = $3 WHERE id = $1")
_CANCEL = Query(
    f"UPDATE jobs SET state = 'cancelled', finished_at = $2 WHERE id = $1 RETURNING {JOB_COLUMNS}"
)


# SQL: 1 when booking ``b``'s job waits for its miner to take it (``Held.waiting``), else 0.
WAITING = (
    "(CASE WHEN b.job_id IS NULL THEN 0 ELSE (SELECT count(*) FROM jobs w "
    "WHERE w.id = b.job_id AND w.booking_id = b.id AND w.state = 'assigned') END)"
)


def _held(row: Row, *, locked: bool) -> Held:
    return Held(
        row["id"],
        waiting=row["state"] == "assigned",
        locked=locked,
        expires_at=as_time(row["expires_at"]),
    )


class JobsOnBookings:
    """bookings.riders.Riders, served by the jobs table."""

    async def client_of(self, conn: Conn, job_id: str) -> str | None:
        owner = await conn.fetchval(_OWNER, job_id)
        return None if owner is None else str(owner)

    async def hold(self, conn: Conn, booking: BookingRecord) -> Held | None:
        row = await conn.fetchrow(_HOLD, booking.job_id, booking.id)
        return await self.see(conn, booking) if row is None else _held(row, locked=True)

    async def see(self, conn: Conn, booking: BookingRecord) -> Held | None:
        row = await conn.fetchrow(_SEE, booking.job_id, booking.id)
        return None if row is None else _held(row, locked=False)

    async def booking_ended(
        self, conn: Conn, held: Held, booking: BookingRecord, *, status: str, now: datetime
    ) -> None:
        """Interrupted or preempted, the job lost its GPU: back to the queue while its
        time-to-live allows, else failed. Otherwise a job still waiting for its miner goes
        back to the queue (the booking ran out unserved); a running one keeps running."""
        error = _LOST.get(status)
        if error is not None and now >= held.expires_at:
            await conn.execute(_FAIL, held.job_id, error, now)
            announce.lost(conn, held.job_id, "failed", booking, now=now, error=error)
        elif error is not None or held.waiting:
            await conn.execute(_REQUEUE, held.job_id)
            announce.lost(conn, held.job_id, "requeued", booking, now=now)

    async def booking_released(
        self, conn: Conn, held: Held, booking: BookingRecord, *, now: datetime
    ) -> None:
        """Its client gave the GPU up: the job ends with its booking, as if cancelled (the
        booking was charged the used time, or nothing when the miner had not taken the
        job)."""
        row = await conn.fetchrow(_CANCEL, held.job_id, now)
        assert row is not None  # held: locked and live
        announce.job(conn, "cancelled", JobRecord.from_row(row), now=now)
