"""A long poll whose miner hung up takes no job: the job stays assigned for the miner's next
poll, which it reaches. Served over real
HTTP, since only a real connection can close under a waiting poll."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI

from tests.jobs.slice_support import POLL, job, polled, report_result, submitted, sweep
from tests.support.api import Api
from tests.support.market import deposit
from tests.support.responses import assert_error, ok


def _open_poll(base: str, key: str, method: str) -> socket.socket:
    """Send a long poll (25 s) on a connection of its own and leave it waiting."""
    address = urlsplit(base)
    sock = socket.create_connection((address.hostname, address.port))
    if method == "POST":
        body = json.dumps({"max_wait_seconds": 25}).encode()
        head = (
            f"POST /v1/miners/poll HTTP/1.1\r\nHost: x\r\nX-Api-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
    else:
        body = b""
        head = (
            "GET /v1/miners/poll?max_wait_seconds=25 HTTP/1.1\r\n"
            f"Host: x\r\nX-Api-Key: {key}\r\n\r\n"
        )
    sock.sendall(head.encode() + body)
    return sock


def _until(condition: Callable[[], bool], seconds: float) -> bool:
    for _ in range(int(seconds * 100)):
        if condition():
            return True
        threading.Event().wait(0.01)
    return False


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_poll_whose_miner_hung_up_takes_no_job(
    api: Api, app: FastAPI, live_server: str, method: str
) -> None:
    miner, client = _rig(api)
    waiting = app.state.signals._waiting

    sock = _open_poll(live_server, miner, method)
    assert _until(lambda: "m1" in waiting, 5), "the poll never waited"
    sock.close()
    # A poll that does not watch its connection would still be waiting here.
    _until(lambda: "m1" not in waiting, 1)

    created = submitted(api, client, constraints={"gpu_model": "RTX 4090"})
    assert job(api, client, created["job_id"])["state"] == "assigned"

    # The miner, back, gets the job; it runs from then on.
    api.clock.advance(seconds=10)
    handed = polled(api, miner)
    assert handed["job_id"] == created["job_id"]
    assert job(api, client, created["job_id"])["state"] == "running"
    api.clock.advance(seconds=5)
    finished = report_result(api, miner, created["job_id"], {"ok": True}).json()
    assert finished["state"] == "completed"


def _rig(api: Api, price: str = "3.6") -> tuple[str, str]:
    """Miner m1 with an RTX 4090 at ``price`` an hour, and client c1 with 100: their keys."""
    miner, client = api.key("miner", "m1"), api.key("client", "c1")
    deposit(api, "c1", "100")
    api.register_gpu(miner, name="RTX 4090", price_per_hour=price)
    return miner, client


def _claimed(api: Api, key: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(api.call("POST", POLL, key, json={"claim": True}))
    return body


def test_a_claimed_job_left_unconfirmed_goes_back_and_its_time_is_not_charged(
    api: Api,
) -> None:
    """The answer to the poll that took the job never reached the miner (here: the test
    drops it). The poll asked for a claim, which runs out unconfirmed: the job goes back for
    the miner's next poll, and the seconds in between are refunded, not charged."""
    miner, client = _rig(api)  # 0.001 a second
    created = submitted(api, client, constraints={"gpu_model": "RTX 4090"})
    lost = _claimed(api, miner)
    assert lost["job_id"] == created["job_id"]
    assert lost["claim_expires_at"] == "2030-01-01T00:00:30Z"

    api.pass_time(31, miner)
    sweep(api)
    assert job(api, client, created["job_id"])["state"] == "assigned"
    booking = api.call("GET", f"/v1/bookings/{created['booking_id']}", client).json()
    assert booking["offline_seconds_refunded"] == 31

    again = _claimed(api, miner)
    assert again["job_id"] == created["job_id"]
    confirmed = api.call("POST", f"/v1/miners/jobs/{created['job_id']}/start", miner)
    assert confirmed.status_code == 200, confirmed.text
    api.clock.advance(seconds=60)
    sweep(api)  # confirmed: the claim no longer runs out
    assert job(api, client, created["job_id"])["state"] == "running"
    report_result(api, miner, created["job_id"], {"ok": True})
    done = api.call("GET", f"/v1/bookings/{created['booking_id']}", client).json()
    assert done["amount_charged"] == "0.060000"  # the 60 s it ran, not the 31 s before


def test_a_claim_that_runs_out_after_its_booking_ended_charges_nothing_and_runs_again(
    api: Api,
) -> None:
    """The lost claim's booking runs out before the claim does: the sweep takes the job
    back first, so the booking ends unserved (refunded whole) and the job goes round again,
    instead of the booking charged in full and the job stuck on it."""
    miner, client = _rig(api)
    created = submitted(
        api, client, duration_hours="0.1", ttl_seconds=7200, constraints={"gpu_model": "RTX 4090"}
    )  # a booking of 360 s
    api.pass_time(350, miner)
    assert _claimed(api, miner)["job_id"] == created["job_id"]  # the answer is lost
    api.pass_time(50, miner)  # the booking ended at 360 s, the claim ran out at 380 s
    sweep(api)
    first = api.call("GET", f"/v1/bookings/{created['booking_id']}", client).json()
    assert (first["status"], first["amount_charged"]) == ("cancelled", "0.000000")
    now = job(api, client, created["job_id"])
    assert now["state"] == "assigned" and now["booking_id"] != created["booking_id"]
    again = _claimed(api, miner)  # the miner's next poll takes it
    assert again["job_id"] == created["job_id"]


def test_cancelling_a_job_whose_claim_ran_out_unconfirmed_charges_nothing(api: Api) -> None:
    """Before a sweep or after, the job never reached its miner: its cancel costs nothing."""
    miner, client = _rig(api)
    created = submitted(api, client, constraints={"gpu_model": "RTX 4090"})
    assert _claimed(api, miner)["job_id"] == created["job_id"]  # the answer is lost
    api.pass_time(120, miner)  # the claim ran out at 30 s; no sweep since
    cancelled = api.call("POST", f"/v1/jobs/{created['job_id']}/cancel", client)
    assert cancelled.status_code == 200, cancelled.text
    account = api.call("GET", "/v1/accounts/me", client).json()
    assert (account["balance"], account["escrow"]) == ("100.000000", "0.000000")


def test_a_claim_confirmed_too_late_is_refused(api: Api) -> None:
    miner, client = _rig(api, price="1")
    created = submitted(api, client, constraints={"gpu_model": "RTX 4090"})
    _claimed(api, miner)
    api.pass_time(31, miner)
    sweep(api)
    late = api.call("POST", f"/v1/miners/jobs/{created['job_id']}/start", miner)
    assert_error(late, 409)
    other = api.key("miner", "m2")
    assert_error(api.call("POST", f"/v1/miners/jobs/{created['job_id']}/start", other), 404)
