"""Random sequences of jobs and bookings over HTTP on a manual clock: clients submit jobs
(on demand, or interruptible with a bid), miners poll for them and report results or
failures, clients cancel jobs and release their bookings, another booking on demand may
preempt an interruptible job's, time passes with or without heartbeats (miners go silent
past the timeout and the grace and come back), and the sweep runs; two miners with two and
three GPUs of one model, two funded clients.

After every step, read straight from the database: the ledger invariants hold (entries
balance, escrow equals open bookings, no overlapping open bookings); the money held by users
equals the deposits; every job assigned or running has its booking, and that booking is open
(or, for a running job, ran out after a poll handed the job over: a started job runs on past
its booking, docs/architecture.md); every open booking that carries a job is the booking of
that job, which is assigned or running (none carries a job that has ended); and a job's
booking that has ended without its miner ever taking the job on it (no poll handed it over)
was charged nothing, however it ended (preempted, interrupted by the miner's silence, run
out, cancelled or released).

No model of the money: only what the test saw handed over is recorded. Each example gets its
own app and database (tests/support/machines.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    invariant,
    precondition,
    rule,
)
from sqlalchemy import select

from aitbc.models import Booking, Job
from tests.jobs.slice_support import (
    cancel_job,
    poll,
    report_failure,
    report_result,
    submit,
    sweep,
)
from tests.support.api import ADMIN_KEY, settings_for
from tests.support.machines import AppMachine, run_machine
from tests.support.money import units

CLIENTS = ("c1", "c2")
MINERS = ("m1", "m2")
GPUS = ("m1", "m1", "m2", "m2", "m2")
PRICE = "3.6"  # a second costs 0.001
DEPOSIT = "40"
MODEL = {"gpu_model": "RTX 4090"}
HOURS = ("0.05", "0.25")  # 3 and 15 minutes
TTLS = (120, 3600)
BIDS = ("1.2", "2.4")  # at least 30 % of the price
SECONDS = (5, 30, 61, 200, 400, 901)
# Mostly both miners heartbeat while time passes; now and then one or both go silent.
ONLINE = st.sampled_from((MINERS, MINERS, MINERS, ("m1",), ("m2",), ()))
ENDED = ("completed", "failed", "cancelled", "expired")
WORKING = ("assigned", "running")


class JobsAndBookings(AppMachine):
    def __init__(self, database_url: str) -> None:
        super().__init__(settings_for(database_url))
        self.keys = {owner: self.api.key("client", owner) for owner in CLIENTS}
        self.keys |= {owner: self.api.key("miner", owner) for owner in MINERS}
        self.gpu_ids = [
            self.api.register_gpu(self.keys[miner], price_per_hour=PRICE) for miner in GPUS
        ]
        self.deposits = 0
        for client in CLIENTS:
            answer = self.call("POST", f"/v1/admin/accounts/{client}/deposit", None,
                               json={"amount": DEPOSIT}, params={"create": "true"})  # fmt: skip
            assert answer.status_code == 201, answer.text
            self.deposits += units(DEPOSIT)
        self.api.pass_time(0, *(self.keys[m] for m in MINERS))
        self.jobs: list[tuple[str, str]] = []  # (job id, client)
        self.held: list[tuple[str, str]] = []  # (job id, miner) handed over by a poll
        self.taken: set[str] = set()  # bookings on which a poll handed their job over

    def call(self, method: str, path: str, owner: str | None, **kwargs: Any) -> Any:
        key = ADMIN_KEY if owner is None else self.keys[owner]
        return self.api.call(method, path, key, **kwargs)

    @staticmethod
    def expect(response: Any, *statuses: int) -> None:
        assert response.status_code in statuses, (statuses, response.text)
        event(f"{response.request.method} {response.status_code}")

    # Rules.

    @rule(
        client=st.sampled_from(CLIENTS),
        hours=st.sampled_from(HOURS),
        ttl=st.sampled_from(TTLS),
        bid=st.sampled_from((None, None, *BIDS)),
    )
    def submit_job(self, client: str, hours: str, ttl: int, bid: str | None) -> None:
        extra: dict[str, Any] = {}
        if bid is not None:
            extra = {"rental_type": "interruptible", "bid_per_hour": bid}
        response = submit(
            self.api, self.keys[client], duration_hours=hours, ttl_seconds=ttl,
            constraints=MODEL, payload={}, **extra,
        )  # fmt: skip
        self.expect(response, 201, 402)
        if response.status_code == 201:
            self.jobs.append((response.json()["job_id"], client))

    @rule(miner=st.sampled_from(MINERS))
    def miner_polls(self, miner: str) -> None:
        response = poll(self.api, self.keys[miner])
        self.expect(response, 200, 204)
        if response.status_code == 200:
            handed = response.json()
            self.taken.add(handed["booking_id"])
            self.held.append((handed["job_id"], miner))

    # No precondition on what the app did (which miner got which job is not fixed: ties
    # between GPUs go by their random ids), so that every replay draws the same data.
    @rule(index=st.integers(0, 1000), succeeded=st.booleans())
    def miner_reports(self, index: int, succeeded: bool) -> None:
        if not self.held:
            return
        job_id, miner = self.held.pop(index % len(self.held))
        report = report_result if succeeded else report_failure
        # Refused when the job has left the miner meanwhile (preempted, lost, cancelled).
        self.expect(report(self.api, self.keys[miner], job_id), 200, 404, 409)

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 1000))
    def client_cancels(self, index: int) -> None:
        job_id, client = self.jobs[index % len(self.jobs)]
        self.expect(cancel_job(self.api, self.keys[client], job_id), 200, 409)

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 1000))
    def client_releases_the_jobs_booking(self, index: int) -> None:
        job_id, client = self.jobs[index % len(self.jobs)]
        shown = self.call("GET", f"/v1/jobs/{job_id}", client)
        self.expect(shown, 200)
        booking_id = shown.json()["booking_id"]
        if booking_id is not None:
            path = f"/v1/bookings/{booking_id}/release"
            self.expect(self.call("POST", path, client), 200, 409)

    @rule(client=st.sampled_from(CLIENTS), gpu=st.integers(0, len(GPUS) - 1))
    def client_books_on_demand(self, client: str, gpu: int) -> None:
        gpu_id = self.gpu_ids[gpu]
        body = {"gpu_id": gpu_id, "duration_hours": "0.05"}
        response = self.call("POST", f"/v1/marketplace/gpu/{gpu_id}/book", client, json=body)
        self.expect(response, 201, 402, 409)

    @rule(seconds=st.sampled_from(SECONDS), online=ONLINE)
    def time_passes(self, seconds: int, online: tuple[str, ...]) -> None:
        self.api.pass_time(seconds, *(self.keys[m] for m in online))

    @rule()
    def sweep_runs(self) -> None:
        sweep(self.api)

    # Invariants.

    @invariant()
    def books_balance(self) -> None:
        figures = self.checker.check()
        assert figures.held_by_users == self.deposits

    @invariant()
    def jobs_and_bookings_agree(self) -> None:
        with self.checker.engine.connect() as conn:
            jobs = {row.id: row for row in conn.execute(select(Job.id, Job.state, Job.booking_id))}
            bookings = {
                row.id: row
                for row in conn.execute(
                    select(Booking.id, Booking.status, Booking.job_id, Booking.charged_units)
                )
            }
            conn.rollback()
        for job in jobs.values():
            if job.state in WORKING:
                assert job.booking_id is not None, job
                held = bookings[job.booking_id]
                # A started job runs on past its booking's end (docs/architecture.md: only
                # a booking ended early, or run out before its miner took the job, moves the
                # job); its result then settles nothing more. Its booking ran out served.
                ran_out = job.state == "running" and held.status == "completed"
                assert held.status == "open" or ran_out, (job, held)
                if ran_out:
                    assert held.id in self.taken, (job, held)
                    event("a running job outlived its booking")
        for b in bookings.values():
            if b.job_id is None:
                continue
            job = jobs[b.job_id]
            if b.status == "open":
                assert job.state not in ENDED, (b, job)
                assert (job.state, job.booking_id) in {(s, b.id) for s in WORKING}, (b, job)
            elif b.id not in self.taken:
                assert b.charged_units == 0, ("charged for a job never taken", b, job)


def test_jobs_and_their_bookings_stay_consistent(request: pytest.FixtureRequest) -> None:
    run_machine(JobsAndBookings, request, examples=10, steps=25)
