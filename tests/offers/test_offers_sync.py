"""Offers from the database, kept in step with the registry as miners register, heartbeat, go
silent and change their GPUs: one offer per GPU of an online miner with the GPU's live
fields; the admin's sync (kept for compatibility) finds nothing left to do; price changes,
offline miners and delisted GPUs; status filter, pagination; miner-offers; the routes without
/v1."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.jobs.slice_support import (
    MINER_OFFERS,
    OFFER_FIELDS,
    OFFERS,
    SYNC,
    delist,
    offer_of,
    offers,
    set_price,
    stats,
    sweep,
    sync,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import advance, booked, deposit, release, review
from tests.support.responses import assert_error, ok

ALL_UNCHANGED = {"created": 0, "updated": 0, "closed": 0, "unchanged": 3}


@dataclass(frozen=True)
class Fleet:
    m1: str
    m2: str
    rtx: str  # m1, RTX 4090, 24 GB, 0.5, eu-west, llama2-7b
    a100: str  # m1, A100, 80 GB, 2.25
    r3090: str  # m2, RTX 3090, 24 GB, 0.3


@pytest.fixture
def fleet(api: Api) -> Fleet:
    m1 = api.key("miner", "m1")
    m2 = api.key("miner", "m2")
    rtx = api.register_gpu(
        m1,
        name="RTX 4090",
        memory_gb=24,
        price_per_hour="0.5",
        region="eu-west",
        cuda_version="12.2",
        compute_capability="8.9",
        cuda_cores=16384,
        ai_models=["llama2-7b", "sdxl"],
    )
    a100 = api.register_gpu(m1, name="A100", memory_gb=80, price_per_hour="2.25")
    r3090 = api.register_gpu(m2, name="RTX 3090", memory_gb=24, price_per_hour="0.3")
    return Fleet(m1=m1, m2=m2, rtx=rtx, a100=a100, r3090=r3090)


def test_offers_follow_the_registry_without_a_sync(api: Api) -> None:
    assert offers(api) == [] and stats(api)["totalOffers"] == 0
    miner = api.key("miner", "m9")
    gpu_id = api.register_gpu(miner, price_per_hour="0.4")
    assert [o["gpu_id"] for o in offers(api)] == [gpu_id]
    assert [o["gpu_id"] for o in offers(api, MINER_OFFERS)] == [gpu_id]
    assert stats(api) == {
        "totalOffers": 1,
        "openCapacity": 1,
        "averagePrice": "0.400000",
        "activeBids": 0,
    }


def test_each_gpu_has_one_offer_with_its_fields(api: Api, fleet: Fleet) -> None:
    now = "2030-01-01T00:00:00Z"

    assert sync(api) == ALL_UNCHANGED  # nothing left for the admin's sync to do

    listed = offers(api)
    assert sorted(o["gpu_id"] for o in listed) == sorted([fleet.rtx, fleet.a100, fleet.r3090])
    assert len({o["id"] for o in listed}) == 3
    for offer in listed:
        assert set(offer) == OFFER_FIELDS, offer
    rtx = offer_of(api, fleet.rtx)
    assert {k: v for k, v in rtx.items() if k != "id"} == {
        "provider": "m1",
        "capacity": 1,
        "price": "0.500000",
        "sla": "standard",
        "status": "open",
        "gpu_id": fleet.rtx,
        "gpu_model": "RTX 4090",
        "gpu_memory": 24,
        "gpu_status": "available",
        "booking_expires": None,
        "total_bookings": 0,
        "average_rating": None,
        "attributes": {
            "gpu_model": "RTX 4090",
            "gpu_memory_gb": 24,
            "cuda_version": "12.2",
            "compute_capability": "8.9",
            "cuda_cores": 16384,
            "region": "eu-west",
            "ai_models": ["llama2-7b", "sdxl"],
        },
        "created_at": now,
        "updated_at": now,
    }
    a100 = offer_of(api, fleet.a100)
    assert (a100["provider"], a100["price"], a100["gpu_model"], a100["gpu_memory"]) == (
        "m1",
        "2.250000",
        "A100",
        80,
    )
    r3090 = offer_of(api, fleet.r3090)
    assert (r3090["provider"], r3090["price"], r3090["gpu_model"]) == ("m2", "0.300000", "RTX 3090")


def test_offers_carry_the_gpus_live_booking_and_rating(api: Api, fleet: Fleet) -> None:
    client = api.key("client", "c1")
    deposit(api, "c1", "100")
    sync(api)
    before = stats(api)
    reply = booked(api, client, fleet.rtx, hours=2)

    rtx = offer_of(api, fleet.rtx)
    during = stats(api)
    assert during["totalOffers"] == before["totalOffers"]  # booked, not closed
    assert during["openCapacity"] == before["openCapacity"] - rtx["capacity"]
    assert rtx["gpu_status"] == "booked"
    assert rtx["booking_expires"] == reply["end_time"] == "2030-01-01T02:00:00Z"
    assert rtx["total_bookings"] == 1
    assert rtx["status"] == "booked"  # the offer says what its GPU allows now
    assert rtx["id"] not in {o["id"] for o in offers(api, status="open")}
    assert [o["id"] for o in offers(api, status="booked")] == [rtx["id"]]
    advance(api, 60, fleet.m1, fleet.m2)
    release(api, client, fleet.rtx)
    review(api, client, fleet.rtx, 4)

    rtx = offer_of(api, fleet.rtx)
    assert (rtx["status"], rtx["gpu_status"], rtx["booking_expires"]) == ("open", "available", None)
    assert (rtx["total_bookings"], rtx["average_rating"]) == (1, "4.00")
    assert offer_of(api, fleet.a100)["total_bookings"] == 0


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("client", 403, "wrong_role"),
        ("miner", 403, "wrong_role"),
        ("anonymous", 401, "authentication_required"),
        ("unknown", 401, "invalid_api_key"),
    ],
)
@pytest.mark.parametrize("path", [SYNC, "/marketplace/sync-offers"])
def test_sync_is_for_admins_only(
    api: Api, fleet: Fleet, who: str, status: int, code: str, path: str
) -> None:
    keys = {
        "client": api.key("client", "c1"),
        "miner": fleet.m1,
        "anonymous": None,
        "unknown": "not-a-real-key-0123456789",
    }

    before = offers(api)
    assert_error(api.call("POST", path, keys[who]), status, code)

    assert offers(api) == before


def test_second_sync_reports_everything_unchanged_and_changes_nothing(
    api: Api, fleet: Fleet
) -> None:
    sync(api)
    before = offers(api)
    before_stats = stats(api)
    advance(api, 30, fleet.m1, fleet.m2)

    assert sync(api) == {"created": 0, "updated": 0, "closed": 0, "unchanged": 3}
    assert offers(api) == before
    assert {o["updated_at"] for o in offers(api)} == {"2030-01-01T00:00:00Z"}
    assert stats(api) == before_stats
    advance(api, 30, fleet.m1, fleet.m2)
    assert sync(api) == {"created": 0, "updated": 0, "closed": 0, "unchanged": 3}
    assert offers(api) == before


def test_a_price_change_reaches_the_offer_at_once(api: Api, fleet: Fleet) -> None:
    before = {o["gpu_id"]: o for o in offers(api)}
    advance(api, 45, fleet.m1, fleet.m2)
    set_price(api, fleet.m1, fleet.rtx, "0.75")

    assert sync(api) == ALL_UNCHANGED

    after = {o["gpu_id"]: o for o in offers(api)}
    assert after[fleet.rtx]["price"] == "0.750000"
    assert after[fleet.rtx]["updated_at"] == "2030-01-01T00:00:45Z"
    assert after[fleet.rtx]["created_at"] == before[fleet.rtx]["created_at"]
    assert after[fleet.rtx]["id"] == before[fleet.rtx]["id"]
    assert after[fleet.a100] == before[fleet.a100]
    assert after[fleet.r3090] == before[fleet.r3090]
    assert sync(api) == {"created": 0, "updated": 0, "closed": 0, "unchanged": 3}


def test_a_newly_registered_gpu_has_an_offer_at_once(api: Api, fleet: Fleet) -> None:
    extra = api.register_gpu(fleet.m2, name="H100", memory_gb=80, price_per_hour="3")

    assert offer_of(api, extra)["price"] == "3.000000"
    assert sync(api) == {"created": 0, "updated": 0, "closed": 0, "unchanged": 4}
    assert len(offers(api)) == 4


def test_offers_of_an_offline_miner_close_and_reopen(api: Api, fleet: Fleet) -> None:
    advance(api, 91, fleet.m1)  # m2 has not been heard of for 91 s: offline
    assert offer_of(api, fleet.r3090)["status"] == "closed"  # at once, before the sweeper
    sweep(api)

    closed = offer_of(api, fleet.r3090)
    assert (closed["status"], closed["gpu_status"]) == ("closed", "offline")
    assert closed["updated_at"] == "2030-01-01T00:01:31Z"
    assert {o["gpu_id"] for o in offers(api, status="open")} == {fleet.rtx, fleet.a100}
    assert [o["gpu_id"] for o in offers(api, status="closed")] == [fleet.r3090]
    assert stats(api)["totalOffers"] == 2
    assert sync(api) == ALL_UNCHANGED

    advance(api, 10, fleet.m1, fleet.m2)  # m2 is back: its heartbeat reopens the offer
    assert sync(api) == ALL_UNCHANGED
    reopened = offer_of(api, fleet.r3090)
    assert (reopened["status"], reopened["gpu_status"]) == ("open", "available")
    assert reopened["id"] == closed["id"]


def test_a_miner_reporting_offline_closes_its_offers(api: Api, fleet: Fleet) -> None:
    response = api.call("POST", "/v1/miners/heartbeat", fleet.m1, json={"status": "offline"})
    assert response.status_code == 200, response.text

    assert sync(api) == ALL_UNCHANGED
    assert {o["gpu_id"] for o in offers(api, status="closed")} == {fleet.rtx, fleet.a100}


def test_a_delisted_gpus_offer_closes(api: Api, fleet: Fleet) -> None:
    delist(api, fleet.m1, fleet.a100)

    assert sync(api) == ALL_UNCHANGED

    closed = offer_of(api, fleet.a100)
    assert (closed["status"], closed["gpu_status"]) == ("closed", "delisted")
    assert details(api, fleet.a100)["status"] == "delisted"
    assert sync(api) == {"created": 0, "updated": 0, "closed": 0, "unchanged": 3}


def test_status_filter(api: Api, fleet: Fleet) -> None:
    sync(api)
    delist(api, fleet.m2, fleet.r3090)
    sync(api)

    assert {o["status"] for o in offers(api, status="open")} == {"open"}
    assert len(offers(api, status="open")) == 2
    assert [o["gpu_id"] for o in offers(api, status="closed")] == [fleet.r3090]
    assert len(offers(api)) == 3
    assert_error(api.call("GET", OFFERS, params={"status": "pending"}), 422)


def test_pagination(api: Api, fleet: Fleet) -> None:
    api.register_gpu(fleet.m2, name="H100", memory_gb=80, price_per_hour="3")
    sync(api)
    everything = offers(api)
    assert len(everything) == 4

    pages = [offers(api, limit=3, offset=0), offers(api, limit=3, offset=3)]
    assert [len(p) for p in pages] == [3, 1]
    assert pages[0] + pages[1] == everything
    assert offers(api, limit=2, offset=1) == everything[1:3]
    assert offers(api, offset=4) == []
    assert len(ok(api.call("GET", OFFERS))) == 4  # default limit 50
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "x"}):
        assert_error(api.call("GET", OFFERS, params=bad), 422, "validation_error")


def test_offers_are_newest_first(api: Api, fleet: Fleet) -> None:
    sync(api)
    advance(api, 5, fleet.m1, fleet.m2)
    newer = api.register_gpu(fleet.m2, name="H100", memory_gb=80, price_per_hour="3")
    sync(api)

    assert offers(api)[0]["gpu_id"] == newer


def test_miner_offers_list_them_with_gpu_details(api: Api, fleet: Fleet) -> None:
    sync(api)
    delist(api, fleet.m2, fleet.r3090)
    sync(api)

    listed = offers(api, MINER_OFFERS)
    assert {o["gpu_id"] for o in listed} == {fleet.rtx, fleet.a100, fleet.r3090}
    for offer in listed:
        assert set(offer) == OFFER_FIELDS
        shown = details(api, offer["gpu_id"])
        assert offer["provider"] == shown["miner_id"]
        assert offer["gpu_model"] == shown["model"]
        assert offer["gpu_memory"] == shown["memory_gb"]
        assert offer["gpu_status"] == shown["status"]
        assert offer["total_bookings"] == shown["total_bookings"]
    assert {o["gpu_id"] for o in offers(api, MINER_OFFERS, provider="m1")} == {
        fleet.rtx,
        fleet.a100,
    }
    assert [o["gpu_id"] for o in offers(api, MINER_OFFERS, provider="m2")] == [fleet.r3090]
    assert offers(api, MINER_OFFERS, provider="nobody") == []
    assert [o["gpu_id"] for o in offers(api, MINER_OFFERS, status="closed")] == [fleet.r3090]
    assert len(offers(api, MINER_OFFERS, limit=2)) == 2


def test_the_routes_answer_without_the_v1_prefix(api: Api, fleet: Fleet) -> None:
    client = api.key("client", "c1")
    deposit(api, "c1", "10")

    assert sync(api, "/marketplace/sync-offers") == ALL_UNCHANGED
    assert offers(api, "/marketplace/offers") == offers(api)
    assert offers(api, "/marketplace/offers", status="closed") == []
    assert offers(api, "/marketplace/miner-offers") == offers(api, MINER_OFFERS)
    assert stats(api, "/marketplace/stats") == stats(api)

    placed = api.call("POST", "/marketplace/bids", client, json={"capacity": 1, "price": "0.1"})
    assert placed.status_code == 202, placed.text
    listed = ok(api.call("GET", "/marketplace/bids", client))
    assert [b["id"] for b in listed] == [placed.json()["id"]]
    assert ok(api.call("GET", "/v1/marketplace/bids", client)) == listed
    assert stats(api, "/marketplace/stats")["activeBids"] == 1
    cancelled = api.call("POST", f"/marketplace/bids/{placed.json()['id']}/cancel", client)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert_error(api.call("POST", "/marketplace/sync-offers"), 401)
    assert_error(api.call("POST", "/marketplace/bids", json={"capacity": 1, "price": "1"}), 401)


def test_an_admin_key_made_through_the_api_may_sync(api: Api, fleet: Fleet) -> None:
    admin = api.key("admin", "ops")

    assert ok(api.call("POST", SYNC, admin))["unchanged"] == 3
    assert ok(api.call("POST", SYNC, ADMIN_KEY))["unchanged"] == 3


def test_offers_follow_dynamic_prices(api: Api, fleet: Fleet) -> None:
    ok(api.call("PATCH", f"/v1/marketplace/gpu/{fleet.rtx}", fleet.m1,
                json={"pricing_mode": "dynamic"}))  # fmt: skip
    client = api.key("client", "c1")
    deposit(api, "c1", "100")
    booked(api, client, fleet.rtx, hours=1)  # the only RTX 4090 is booked: demand is up
    advance(api, 120, fleet.m1, fleet.m2)
    sweep(api)  # recomputes the stale market price
    shown = details(api, fleet.rtx)["price_per_hour"]
    assert shown != "0.500000", "the market price did not move; the test proves nothing"
    assert offer_of(api, fleet.rtx)["price"] == shown
