"""The event feed through the API: each change's events, to whom they go, cursors, filters
and the long poll."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import timedelta
from typing import Any

import httpx

from tests.jobs.slice_support import bid, job, polled, report_result, submitted
from tests.support.api import ADMIN_KEY, Api
from tests.support.market import Market, booked, deposit, heartbeat, release, review
from tests.support.waiting import until


def events(api: Api, key: str, **params: Any) -> dict[str, Any]:
    response = api.call("GET", "/v1/events", key, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def types(page: dict[str, Any]) -> list[str]:
    return [event["type"] for event in page["events"]]


def test_a_booking_and_its_release_reach_the_renter_and_the_provider(
    api: Api, market: Market
) -> None:
    gpu = market.gpu(price_per_hour="2")
    renter = market.client("c1")
    made = booked(api, renter, gpu, hours=1)
    api.pass_time(600, market.miner_key)
    ended = release(api, renter, gpu)

    mine = events(api, renter)
    assert types(mine) == [
        "account.deposit",
        "booking.created",
        "booking.released",
        "order.refunded",
    ]
    created = mine["events"][1]
    assert created["object"] == "booking" and created["object_id"] == made["booking_id"]
    assert (
        created["data"]["status"] == "active"
        and created["data"]["total_cost"] == made["total_cost"]
    )
    released = mine["events"][2]["data"]
    shown = api.call("GET", f"/v1/bookings/{made['booking_id']}", renter).json()
    assert released == shown  # the booking as the API shows it
    assert released["status"] == "released" and ended
    refund = mine["events"][3]["data"]
    assert refund["reason"] == "released" and refund["booking_id"] == made["booking_id"]
    ids = [event["id"] for event in mine["events"]]
    assert ids == sorted(ids) and mine["next_after"] == ids[-1] and mine["more"] is False

    provider = events(api, market.miner_key)
    assert types(provider) == [
        "booking.created",
        "booking.released",
        "order.refunded",
    ]
    # Another client sees none of it.
    assert events(api, market.client("c2"))["events"][1:] == []


def sweep(api: Api) -> None:
    api.client.app.state.sweeper.run_once()  # type: ignore[attr-defined]


def test_the_cursor_pages_in_order_and_types_filter(api: Api, market: Market) -> None:
    gpus = [market.gpu() for n in range(3)]
    renter = market.client("c1")
    for gpu in gpus:
        booked(api, renter, gpu, hours=1)
    first = events(api, renter, limit=3)
    assert len(first["events"]) == 3 and first["more"] is True
    rest = events(api, renter, after=first["next_after"], limit=100)
    everything = events(api, renter)["events"]
    assert first["events"] + rest["events"] == everything
    assert rest["more"] is False
    created = events(api, renter, types="booking.created")
    assert types(created) == ["booking.created"] * 3
    family = events(api, renter, types="account.*,booking.created")
    assert types(family) == ["account.deposit"] + ["booking.created"] * 3
    newest = events(api, renter, latest="true", limit=2)
    assert newest["events"] == everything[-2:]
    empty = events(api, renter, after=everything[-1]["id"])
    assert empty == {"events": [], "next_after": everything[-1]["id"], "more": False}


def test_bad_feed_requests_are_refused_with_a_code(api: Api, market: Market) -> None:
    renter = market.client("c1")
    unknown = api.call("GET", "/v1/events", renter, params={"types": "booking.exploded"})
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_event_type"
    other = api.call("GET", "/v1/events", renter, params={"owner": "m-1"})
    assert other.status_code == 403
    assert api.call("GET", "/v1/events", "").status_code == 401
    negative = api.call("GET", "/v1/events", renter, params={"after": "-1"})
    assert negative.status_code == 422
    # Past the largest id an event can have (a 64-bit integer): refused, not a 500.
    for beyond in (2**63, 135636134802939845804032):
        too_far = api.call("GET", "/v1/events", renter, params={"after": beyond, "wait": 0})
        assert too_far.status_code == 422 and too_far.json()["error"] == "validation_error"
    last = api.call("GET", "/v1/events", renter, params={"after": 2**63 - 1})
    assert last.status_code == 200 and last.json()["events"] == []
    admin = api.call("GET", "/v1/events", ADMIN_KEY, params={"owner": "c1"})
    assert admin.status_code == 200 and types(admin.json()) == ["account.deposit"]


def test_a_long_poll_wakes_when_an_event_is_written(
    api: Api, app: Any, market: Market, live_server: str
) -> None:
    renter = market.client("c1")
    gpu = market.gpu()
    cursor = events(api, renter)["next_after"]
    answers: list[Any] = []

    def wait() -> None:
        answers.append(
            httpx.get(
                f"{live_server}/v1/events",
                params={"after": cursor, "wait": 20},
                headers={"X-Api-Key": renter},
                timeout=30,
            ).json()
        )

    waiting = threading.Thread(target=wait)
    started = time.monotonic()
    waiting.start()
    until(lambda: any(k.endswith(":c1") for k in app.state.signals._waiting), 5)
    booked(api, renter, gpu, hours=1)
    waiting.join(10)
    assert time.monotonic() - started < 10
    assert types(answers[0]) == ["booking.created"]


def test_gpu_offline_and_back_reach_the_provider_and_its_renters(api: Api, market: Market) -> None:
    gpu = market.gpu()
    idle = market.gpu()
    renter = market.client("c1")
    booked(api, renter, gpu, hours=2)
    api.clock.advance(seconds=120)  # past the 90-second heartbeat timeout
    sweep(api)
    sweep(api)  # told once
    offline = events(api, renter, types="gpu.*")["events"]
    assert [(e["type"], e["object_id"]) for e in offline] == [("gpu.offline", gpu)]
    heartbeat(api, market.miner_key)
    provider = events(api, market.miner_key, types="gpu.*")["events"]
    assert sorted((e["type"], e["object_id"]) for e in provider) == sorted(
        [("gpu.offline", gpu), ("gpu.offline", idle), ("gpu.back", gpu), ("gpu.back", idle)]
    )
    back = next(e for e in provider if e["type"] == "gpu.back")
    assert back["data"]["offline_seconds"] == 120 and back["data"]["status"] == "online"


def test_a_silence_no_sweep_noticed_is_still_told_when_the_miner_returns(
    api: Api, market: Market
) -> None:
    gpu = market.gpu()
    api.clock.advance(seconds=100)
    heartbeat(api, market.miner_key)
    told = events(api, market.miner_key, types="gpu.*")
    assert [(e["type"], e["object_id"]) for e in told["events"]] == [
        ("gpu.offline", gpu),
        ("gpu.back", gpu),
    ]


def test_ending_soon_goes_out_once_before_the_end(api: Api, market: Market) -> None:
    gpu = market.gpu()
    renter = market.client("c1")
    made = booked(api, renter, gpu, hours=1)
    api.pass_time(44 * 60, market.miner_key)
    sweep(api)
    assert types(events(api, renter, types="booking.ending_soon")) == []
    api.pass_time(60, market.miner_key)
    sweep(api)
    api.pass_time(60, market.miner_key)
    sweep(api)
    soon = events(api, renter, types="booking.ending_soon")["events"]
    assert len(soon) == 1 and soon[0]["object_id"] == made["booking_id"]
    assert soon[0]["data"]["ends_in_seconds"] == 15 * 60
    api.pass_time(15 * 60, market.miner_key)
    sweep(api)
    ended = types(events(api, renter, types="booking.*"))
    assert ended[-2:] == ["booking.ending_soon", "booking.completed"]


def test_a_job_tells_its_client_and_its_miner_each_step(api: Api, market: Market) -> None:
    market.gpu()
    client = market.client("c1")
    made = submitted(api, client, constraints={"gpu_model": "RTX 4090"}, duration_hours="1")
    polled(api, market.miner_key)
    report_result(api, market.miner_key, made["job_id"], {"ok": True})
    job_types = types(events(api, client, types="job.*"))
    assert job_types == ["job.queued", "job.assigned", "job.finished"]
    assert types(events(api, market.miner_key, types="job.*")) == ["job.assigned", "job.finished"]
    finished = events(api, client, types="job.finished")["events"][0]["data"]
    assert finished["state"] == "completed" and finished["job_id"] == made["job_id"]


def test_a_job_whose_gpu_is_lost_is_requeued_with_an_event(api: Api, market: Market) -> None:
    market.gpu()
    client = market.client("c1")
    made = submitted(api, client, constraints={"gpu_model": "RTX 4090"}, duration_hours="1")
    polled(api, market.miner_key)
    api.clock.advance(seconds=90 + 600 + 1)  # silent past the timeout and the grace
    sweep(api)
    said = types(events(api, client))
    assert said[-3:] == ["job.requeued", "booking.interrupted", "order.refunded"]
    requeued = events(api, client, types="job.requeued")["events"]
    assert [e["object_id"] for e in requeued] == [made["job_id"]]
    assert job(api, client, made["job_id"])["state"] == requeued[0]["data"]["state"] == "queued"


def test_bids_reviews_and_extensions_have_their_events(api: Api, market: Market) -> None:
    gpu = market.gpu(price_per_hour="0.5")
    client = market.client("c1")
    placed = bid(api, client, capacity=1, price="0.6")
    lonely = bid(api, client, capacity=1, price="0.1", ttl_hours=1)
    api.pass_time(3601, market.miner_key)
    sweep(api)
    bids = events(api, client, types="bid.*")["events"]
    assert [(e["type"], e["object_id"]) for e in bids] == [
        ("bid.filled", placed["id"]),
        ("bid.expired", lonely["id"]),
    ]
    booking_id = bids[0]["data"]["booking_ids"][0]
    longer = api.call("POST", f"/v1/bookings/{booking_id}/extend", client, json={"hours": 1})
    assert longer.status_code == 409  # it has ended: the bid booked an hour
    booking_id = booked(api, client, gpu, hours=1)["booking_id"]
    longer = api.call("POST", f"/v1/bookings/{booking_id}/extend", client, json={"hours": 1})
    assert longer.status_code == 200, longer.text
    assert types(events(api, client, types="booking.extended")) == ["booking.extended"]
    review(api, client, gpu, 5, "fast")
    posted = events(api, market.miner_key, types="review.posted")["events"]
    assert [e["data"]["rating"] for e in posted] == [5]
    assert types(events(api, client, types="review.*")) == []


def test_a_reservation_is_created_pending_and_started_when_its_time_comes(
    api: Api, market: Market
) -> None:
    gpu = market.gpu()
    renter = market.client("c1")
    start = (api.clock.now() + timedelta(hours=1)).isoformat()
    made = booked(api, renter, gpu, hours=1, start_time=start)
    created = events(api, renter, types="booking.*")["events"]
    assert [(e["type"], e["data"]["status"]) for e in created] == [("booking.created", "pending")]
    api.pass_time(30 * 60, market.miner_key)
    sweep(api)
    assert types(events(api, renter, types="booking.started")) == []
    api.pass_time(31 * 60, market.miner_key)
    sweep(api)
    started = events(api, market.miner_key, types="booking.started")["events"]
    assert [(e["object_id"], e["data"]["status"]) for e in started] == [
        (made["booking_id"], "active")
    ]


def test_pruning_keeps_the_newest_event_so_numbers_keep_rising(api: Api, market: Market) -> None:
    renter = market.client("c1")
    deposit(api, "c1", "1")
    deposit(api, "c1", "2")
    last = events(api, renter)["next_after"]
    api.clock.advance(days=31)
    sweep(api)
    assert [e["id"] for e in events(api, renter)["events"]] == [last]  # the newest stays
    deposit(api, "c1", "3")
    page = events(api, renter)["events"]
    assert [e["data"]["amount"] for e in page] == ["2.000000", "3.000000"]
    assert page[1]["id"] > last


def test_a_long_poll_whose_client_left_stops_waiting(
    api: Api, app: Any, market: Market, live_server: str
) -> None:
    renter = market.client("c1")
    waiting = app.state.signals._waiting
    with contextlib.suppress(httpx.ReadTimeout):
        httpx.get(
            f"{live_server}/v1/events",
            params={"after": 10**9, "wait": 30},
            headers={"X-Api-Key": renter},
            timeout=0.5,  # the client gives up and closes its connection
        )
    until(lambda: not any(k.endswith(":c1") for k in waiting), 3, "the poll to end")


def test_a_low_balance_alert_tells_once_until_the_balance_is_back(api: Api, market: Market) -> None:
    gpu = market.gpu(price_per_hour="10")
    renter = market.client("c1", amount="25")
    path = "/v1/accounts/me/low-balance-alert"
    assert api.call("GET", path, renter).json() == {"below": None}
    set_to = api.call("PUT", path, renter, json={"below": "10"})
    assert set_to.status_code == 200 and set_to.json() == {"below": "10.000000"}
    assert api.call("PUT", path, renter, json={"below": "-1"}).status_code == 422
    sweep(api)
    assert types(events(api, renter, types="account.low_balance")) == []
    booked(api, renter, gpu, hours=2)  # 20 of 25: 5 left
    sweep(api)
    sweep(api)
    low = events(api, renter, types="account.low_balance")["events"]
    assert [(e["data"]["balance"], e["data"]["below"]) for e in low] == [("5.000000", "10.000000")]
    deposit(api, "c1", "20")  # back above: the next fall tells again
    sweep(api)
    booked(api, renter, market.gpu(price_per_hour="10"), hours=2)
    sweep(api)
    assert len(events(api, renter, types="account.low_balance")["events"]) == 2
    assert api.call("PUT", path, renter, json={"below": None}).json() == {"below": None}
    assert api.call("GET", path, renter).json() == {"below": None}
