"""Webhooks through the API, delivering to a real HTTP server: signatures, order, types,
retries with back-off, giving up and starting again where it stopped, the log, the test
post, and who may see what."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from aitbc.dispatcher import Dispatcher
from aitbc.webhooks.delivery import backoff
from aitbc.webhooks.signing import HEADER, verify
from tests.events.test_feed import events, sweep, types
from tests.support.api import Api
from tests.support.market import Market, booked, deposit, release
from tests.support.receiver import Receiver


def hook(api: Api, key: str, url: str, **body: Any) -> dict[str, Any]:
    response = api.call("POST", "/v1/webhooks", key, json={"url": url} | body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def deliver(app: FastAPI) -> int:
    done: int = app.state.dispatcher.run_once()
    return done


def shown(api: Api, key: str, webhook_id: str) -> dict[str, Any]:
    response = api.call("GET", f"/v1/webhooks/{webhook_id}", key)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_events_are_posted_signed_in_order_and_logged(
    api: Api, app: FastAPI, market: Market, receiver: Receiver
) -> None:
    renter = market.client("c1")
    made = hook(api, renter, receiver.url)
    assert made["secret"].startswith("whsec_") and made["enabled"] is True
    listed = api.call("GET", "/v1/webhooks", renter).json()
    assert [h["webhook_id"] for h in listed] == [made["webhook_id"]]
    assert "secret" not in listed[0]
    gpu = market.gpu()
    booked(api, renter, gpu, hours=1)
    release(api, renter, gpu)

    assert deliver(app) == 3
    feed = events(api, renter)["events"]
    assert [r.body for r in receiver.got] == feed[1:]  # from the webhook's making on
    now = int(time.time())
    for got in receiver.got:
        assert verify(made["secret"], got.headers[HEADER], got.raw, now=now)
        assert not verify("whsec_other", got.headers[HEADER], got.raw, now=now)
        assert got.headers["X-Aitbc-Event-Id"] == str(got.body["id"])
        assert got.headers["X-Aitbc-Event-Type"] == got.body["type"]
    tampered = receiver.got[0].raw.replace(b"booking", b"bookinG")
    assert not verify(made["secret"], receiver.got[0].headers[HEADER], tampered, now=now)
    assert not verify(
        made["secret"], receiver.got[0].headers[HEADER], receiver.got[0].raw, now=now + 600
    )

    assert deliver(app) == 0  # nothing twice
    state = shown(api, renter, made["webhook_id"])
    assert state["delivered"] == 3 and state["last_event_id"] == feed[-1]["id"]
    log = api.call("GET", f"/v1/webhooks/{made['webhook_id']}/deliveries", renter).json()
    assert [entry["event_id"] for entry in log] == [e["id"] for e in reversed(feed[1:])]
    assert all(entry["ok"] and entry["status_code"] == 204 for entry in log)


def test_a_webhook_gets_only_the_types_it_asked_for(
    api: Api, app: FastAPI, market: Market, receiver: Receiver
) -> None:
    renter = market.client("c1")
    made = hook(api, renter, receiver.url, types="booking.released,order.*")
    assert made["types"] == ["booking.released", "order.*"]
    gpu = market.gpu()
    booked(api, renter, gpu, hours=1)
    api.pass_time(60, market.miner_key)
    release(api, renter, gpu)
    deliver(app)
    assert [r.body["type"] for r in receiver.got] == ["booking.released", "order.refunded"]
    assert (
        shown(api, renter, made["webhook_id"])["last_event_id"] == events(api, renter)["next_after"]
    )


def test_a_failing_receiver_is_retried_with_back_off_and_gets_everything_in_order(
    api: Api, app: FastAPI, market: Market, receiver: Receiver
) -> None:
    renter = market.client("c1")
    made = hook(api, renter, receiver.url)
    gpu = market.gpu()
    booked(api, renter, gpu, hours=1)
    deposit(api, "c1", "5")
    receiver.answer = 500
    assert deliver(app) == 0
    assert len(receiver.got) == 1  # the first event, refused: the second waits behind it
    failing = shown(api, renter, made["webhook_id"])
    assert failing["failures"] == 1 and failing["last_error"].startswith("HTTP 500")
    assert deliver(app) == 0 and len(receiver.got) == 1  # not before its back-off
    receiver.stop()  # down
    api.clock.advance(seconds=5)
    assert deliver(app) == 0
    assert shown(api, renter, made["webhook_id"])["failures"] == 2
    receiver.answer = 204
    receiver.start()  # back
    api.clock.advance(seconds=10)
    assert deliver(app) == 2
    sent = [r.body["id"] for r in receiver.got]
    assert sent[0] == sent[1]  # the refused event again, then the next
    assert sent[1:] == [e["id"] for e in events(api, renter)["events"][1:]]
    log = api.call("GET", f"/v1/webhooks/{made['webhook_id']}/deliveries", renter).json()
    assert [(e["ok"], e["attempt"]) for e in reversed(log)] == [
        (False, 1),
        (False, 2),
        (True, 3),
        (True, 1),
    ]
    assert "ConnectError" in log[2]["error"]


def test_the_back_off_doubles_to_an_hour() -> None:
    waits = [backoff(n) for n in range(1, 14)]
    assert waits[:4] == [timedelta(seconds=s) for s in (5, 10, 20, 40)]
    assert waits[-1] == timedelta(hours=1) and waits == sorted(waits)
    assert backoff(10_000) == timedelta(hours=1)


def test_a_webhook_failing_for_a_day_is_disabled_and_resumes_where_it_stopped(
    api: Api, app: FastAPI, market: Market, receiver: Receiver
) -> None:
    renter = market.client("c1")
    made = hook(api, renter, receiver.url)
    booked(api, renter, market.gpu(), hours=1)
    receiver.answer = 503
    hours = 0.0
    while shown(api, renter, made["webhook_id"])["enabled"]:
        deliver(app)
        api.clock.advance(hours=1)
        hours += 1
        assert hours < 30
    assert 24 <= hours <= 26
    state = shown(api, renter, made["webhook_id"])
    assert state["disabled_reason"].startswith("failed for 1 day")
    disabled = events(api, renter, types="webhook.disabled")["events"]
    assert [e["object_id"] for e in disabled] == [made["webhook_id"]]
    tried = len(receiver.got)
    api.clock.advance(hours=5)
    deliver(app)
    assert len(receiver.got) == tried  # off: nothing is posted
    receiver.answer = 200
    on = api.call("PATCH", f"/v1/webhooks/{made['webhook_id']}", renter, json={"enabled": True})
    assert on.status_code == 200 and on.json()["enabled"] is True
    deliver(app)
    after_first = [r.body["id"] for r in receiver.got[tried:]]
    assert after_first == [e["id"] for e in events(api, renter)["events"][1:]]


def test_the_test_post_is_signed_and_logged(api: Api, market: Market, receiver: Receiver) -> None:
    renter = market.client("c1")
    made = hook(api, renter, receiver.url)
    tested = api.call("POST", f"/v1/webhooks/{made['webhook_id']}/test", renter)
    assert tested.status_code == 200, tested.text
    assert tested.json()["ok"] is True and tested.json()["event_type"] == "webhook.test"
    got = receiver.got[0]
    assert got.body["type"] == "webhook.test" and got.body["id"] is None
    assert verify(made["secret"], got.headers[HEADER], got.raw, now=int(time.time()))
    receiver.stop()
    down = api.call("POST", f"/v1/webhooks/{made['webhook_id']}/test", renter).json()
    assert down["ok"] is False and "ConnectError" in down["error"]
    log = api.call("GET", f"/v1/webhooks/{made['webhook_id']}/deliveries", renter).json()
    assert [e["ok"] for e in log] == [False, True]


def test_webhooks_belong_to_their_owner(api: Api, market: Market, receiver: Receiver) -> None:
    mine = hook(api, market.client("c1"), receiver.url)
    other = market.client("c2")
    path = f"/v1/webhooks/{mine['webhook_id']}"
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/test"), ("GET", "/deliveries")):
        answer = api.call(method, path + suffix, other)
        assert answer.status_code == 404 and answer.json()["error"] == "webhook_not_found"
    assert api.call("GET", "/v1/webhooks", other).json() == []
    for _ in range(10):
        hook(api, other, receiver.url)
    too_many = api.call("POST", "/v1/webhooks", other, json={"url": receiver.url})
    assert too_many.status_code == 409 and too_many.json()["error"] == "too_many_webhooks"
    gone = api.call("DELETE", path, market.client("c1"))
    assert gone.status_code == 204
    assert api.call("GET", path, market.client("c1")).status_code == 404
    bad = api.call("POST", "/v1/webhooks", other, json={"url": receiver.url, "types": "nope"})
    assert bad.status_code == 422 and bad.json()["error"] == "unknown_event_type"


def test_sweeping_does_not_deliver_and_delivering_needs_no_sweep(
    api: Api, app: FastAPI, market: Market, receiver: Receiver
) -> None:
    renter = market.client("c1")
    hook(api, renter, receiver.url, types="account.*")
    sweep(api)
    assert receiver.got == []
    deposit(api, "c1", "5")
    assert deliver(app) == 1 and types({"events": [r.body for r in receiver.got]}) == [
        "account.deposit"
    ]


def test_events_and_delivery_logs_past_the_retention_are_pruned(
    api: Api, app: FastAPI, market: Market, receiver: Receiver
) -> None:
    renter = market.client("c1")
    made = hook(api, renter, receiver.url)
    deposit(api, "c1", "5")
    deliver(app)
    api.clock.advance(days=29)
    deposit(api, "c1", "6")
    deliver(app)
    api.clock.advance(days=2)  # the first two deposits are 31 days old, the last 2 days
    sweep(api)
    kept = events(api, renter)["events"]
    assert [e["data"]["amount"] for e in kept] == ["6.000000"]
    log = api.call("GET", f"/v1/webhooks/{made['webhook_id']}/deliveries", renter).json()
    assert [e["event_id"] for e in log] == [kept[0]["id"]]


def test_a_delivery_to_an_address_no_longer_allowed_is_refused_and_retried(
    api: Api, app: FastAPI, market: Market, receiver: Receiver
) -> None:
    renter = market.client("c1")
    made = hook(api, renter, receiver.url)  # made while private addresses were allowed
    deposit(api, "c1", "5")
    strict = app.state.settings.model_copy(update={"webhook_allow_private": False})
    checking = Dispatcher(app.state.store, api.clock, strict)
    assert checking.run_once() == 0
    assert receiver.got == []  # checked again before posting: nothing was sent
    state = shown(api, renter, made["webhook_id"])
    assert state["failures"] == 1 and "not a public address" in state["last_error"]


def test_a_webhook_for_rare_types_passes_over_many_others_at_once(
    api: Api, app: FastAPI, market: Market, receiver: Receiver
) -> None:
    renter = market.client("c1")
    made = hook(api, renter, receiver.url, types="booking.created")
    for _ in range(60):  # more than a round's worth of events it does not want
        deposit(api, "c1", "1")
    booked(api, renter, market.gpu(), hours=1)
    assert deliver(app) == 1
    assert [r.body["type"] for r in receiver.got] == ["booking.created"]
    last = events(api, renter, latest="true", limit=1)["next_after"]
    assert shown(api, renter, made["webhook_id"])["last_event_id"] == last
