"""Interruptible jobs: a job with a bid runs on a GPU its bid wins (free, or held by a lower
bid), on an interruptible booking paying the bid; preempted, it goes back to the queue and
the miner's heartbeat names it until the notice ends; it is handed to the miner only once
its booking has begun."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from tests.bookings.booking_support import book, booked, parse_time
from tests.jobs.slice_support import (
    balance,
    booking,
    job,
    poll,
    polled,
    submit,
    submitted,
    sweep,
)
from tests.jobs.test_wakeup_lost import _poll as long_poll
from tests.support.api import Api
from tests.support.market import Market, advance
from tests.support.responses import assert_error
from tests.support.waiting import until

NOTICE = 30


def interruptible_job(api: Api, key: str, bid: str, **body: object) -> dict[str, object]:
    return submitted(api, key, rental_type="interruptible", bid_per_hour=bid, **body)


def test_a_job_with_a_bid_runs_interruptibly_at_its_bid(api: Api, market: Market) -> None:
    gpu = market.gpu(price_per_hour="2")
    market.beat()
    client = market.client("c1", "100")
    made = interruptible_job(api, client, "0.8")
    assert (made["state"], made["gpu_id"]) == ("assigned", gpu)
    assert (made["rental_type"], made["bid_per_hour"]) == ("interruptible", "0.800000")
    held = booking(api, client, str(made["booking_id"]))
    assert (held["rental_type"], held["price_per_hour"]) == ("interruptible", "0.800000")
    assert job(api, client, str(made["job_id"])) == made


def test_a_job_takes_the_gpu_its_bid_wins_cheapest_and_never_one_it_cannot(
    api: Api, market: Market
) -> None:
    dear = market.gpu(price_per_hour="3")  # least bid 0.9: more than the jobs bid
    held = market.gpu(price_per_hour="2")  # held at 0.7: 0.71 wins it
    cheap_on_demand = market.gpu(price_per_hour="1")
    path = f"/v1/marketplace/gpu/{cheap_on_demand}"
    off = api.call("PATCH", path, market.miner_key, json={"interruptible": False})
    assert off.status_code == 200, off.text
    market.beat()
    holder = market.client("c2", "100")
    taken = book(api, holder, held, 1, rental_type="interruptible", bid_per_hour="0.7")
    assert taken.status_code == 201, taken.text
    client = market.client("c1", "100")
    low = interruptible_job(api, client, "0.7")  # wins nothing now: it waits
    assert (low["state"], low["gpu_id"]) == ("queued", None)
    made = interruptible_job(api, client, "0.8")
    assert made["gpu_id"] == held  # the one its bid wins
    low = interruptible_job(api, client, "0.8")  # it now holds the GPU at 0.8
    assert (low["state"], low["gpu_id"]) == ("queued", None)
    assert dear  # registered, and above the bid


def test_a_preempted_job_goes_back_to_the_queue_and_its_miner_hears_of_it(
    api: Api, market: Market
) -> None:
    gpu = market.gpu(price_per_hour="2")
    market.beat()
    client = market.client("c1", "100")
    made = interruptible_job(api, client, "0.8")
    handed = polled(api, market.miner_key)
    assert handed["job_id"] == made["job_id"]
    taking = booked(api, market.client("c2", "100"), gpu, 1)  # on demand: preempts it
    taken_at = api.clock.now() + timedelta(seconds=NOTICE)
    assert parse_time(taking["start_time"]) == taken_at
    beat = api.call("POST", "/v1/miners/heartbeat", market.miner_key, json={})
    [notice] = beat.json()["preemptions"]
    assert (notice["booking_id"], notice["job_id"]) == (made["booking_id"], made["job_id"])
    assert job(api, client, str(made["job_id"]))["state"] == "queued"
    assert booking(api, client, str(made["booking_id"]))["status"] == "preempted"


def test_a_preempted_job_its_miner_had_not_taken_costs_nothing(api: Api, market: Market) -> None:
    """Nothing ran on the GPU: as a job cancelled, or a booking run out, before its miner
    took the job, the preempted booking is refunded whole (not charged to the notice)."""
    gpu = market.gpu(price_per_hour="2")
    market.beat()
    client = market.client("c1", "100")
    made = interruptible_job(api, client, "0.8")  # assigned; its miner does not poll
    advance(api, 600, market.miner_key)
    booked(api, market.client("c2", "100"), gpu, 1)  # on demand: preempts it

    ended = booking(api, client, str(made["booking_id"]))
    assert (ended["status"], ended["amount_charged"]) == ("preempted", "0.000000")
    assert ended["refund"] == ended["total_cost"] == "0.800000"
    assert job(api, client, str(made["job_id"]))["state"] == "queued"
    assert balance(api, client) == ("100.000000", "0.000000")


def test_a_job_that_preempts_is_handed_over_only_when_its_booking_begins(
    api: Api, market: Market
) -> None:
    gpu = market.gpu(price_per_hour="2")
    market.beat()
    holder = market.client("c2", "100")
    taken = book(api, holder, gpu, 1, rental_type="interruptible", bid_per_hour="0.7")
    assert taken.status_code == 201, taken.text
    made = submitted(api, market.client("c1", "100"), payload={})  # on demand: preempts
    assert (made["state"], made["gpu_id"]) == ("assigned", gpu)
    assert poll(api, market.miner_key).status_code == 204  # the holder's notice runs
    advance(api, NOTICE, market.miner_key)
    assert polled(api, market.miner_key)["job_id"] == made["job_id"]


def test_an_interruptible_job_needs_a_bid_and_a_bid_needs_interruptible(
    api: Api, market: Market
) -> None:
    client = market.client("c1", "100")
    assert_error(submit(api, client, rental_type="interruptible"), 422, "bid_required")
    assert_error(submit(api, client, bid_per_hour="0.5"), 422, "bid_needs_interruptible")


def test_a_waiting_poll_is_woken_when_the_booking_of_its_job_begins(
    api: Api, market: Market, app: FastAPI, live_server: str
) -> None:
    gpu = market.gpu(price_per_hour="2")
    market.beat()
    taken = book(
        api, market.client("c2", "100"), gpu, 1, rental_type="interruptible", bid_per_hour="0.7"
    )
    assert taken.status_code == 201, taken.text
    made = submitted(api, market.client("c1", "100"), payload={})  # begins after the notice
    answers: list[tuple[int, Any]] = []
    waiting = threading.Thread(target=long_poll, args=(live_server, market.miner_key, 25, answers))
    waiting.start()
    until(lambda: "m-1" in app.state.signals._waiting, 5, "the poll to wait")
    advance(api, NOTICE, market.miner_key)
    sweep(api)  # records the booking's start: the poll hears of it then, not 25 s later
    waiting.join(10)
    assert not waiting.is_alive(), "the poll was not woken"
    [(status, handed)] = answers
    assert (status, handed["job_id"]) == (200, made["job_id"])


def test_an_on_demand_job_takes_a_free_gpu_before_preempting_anyone(
    api: Api, market: Market
) -> None:
    held = market.gpu(price_per_hour="1")  # cheaper, but held by a bid
    free = market.gpu(price_per_hour="2")
    market.beat()
    holder = market.client("c2", "100")
    taken = book(api, holder, held, 1, rental_type="interruptible", bid_per_hour="0.5")
    assert taken.status_code == 201, taken.text
    made = submitted(api, market.client("c1", "100"), payload={})
    assert made["gpu_id"] == free
    assert booking(api, holder, taken.json()["booking_id"])["status"] == "active"


def test_a_claim_does_not_outlive_its_hand_over(api: Api, market: Market) -> None:
    """A job claimed by one miner, preempted back to the queue, then handed without a claim
    to another: no claim left from the first hand-over takes it back from the second."""
    gpu = market.gpu(price_per_hour="2")
    market.beat()
    client = market.client("c1", "100")
    made = api.call(
        "POST", "/v1/jobs", client,
        json={"payload": {}, "rental_type": "interruptible", "bid_per_hour": "0.8"},
    ).json()  # fmt: skip
    first = api.call("POST", "/v1/miners/poll", market.miner_key, json={"claim": True})
    assert first.status_code == 200 and first.json()["job_id"] == made["job_id"]
    booked(api, market.client("c2", "100"), gpu, 1)  # on demand: the job goes back
    assert job(api, client, made["job_id"])["state"] == "queued"
    m2 = market.miner("m2")
    api.register_gpu(m2, name="RTX 4090", price_per_hour="2")
    second = api.call("POST", "/v1/miners/poll", m2, json={})
    assert second.status_code == 200 and second.json()["job_id"] == made["job_id"]
    assert second.json()["claim_expires_at"] is None
    api.clock.advance(seconds=31)
    api.call("POST", "/v1/miners/heartbeat", m2, json={})
    sweep(api)
    assert job(api, client, made["job_id"])["state"] == "running"
    assert api.call("POST", "/v1/miners/poll", m2, json={}).status_code == 204
