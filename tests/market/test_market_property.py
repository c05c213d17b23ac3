"""The market against its rules, on PostgreSQL with three server processes and the real
clock: a seeded random run of clients booking on demand and interruptibly (by GPU and by
criteria, some with a price cap), raising bids and releasing, while miners go silent and
bookings run out. Afterwards, read from the database:

- no two bookings of a GPU held it at the same moment, by any amount (a preempted booking
  holds it until its notice ended), and the ledger balances: every balance is the sum of
  its entries, the balances sum to zero, and the users hold exactly what was deposited;
- every preemption gave its notice (the booking kept its GPU for the whole notice, or to
  its own end) and charged exactly the seconds to its moment;
- nobody paid above their bid or cap: an interruptible booking pays the bid it was last
  given, an on-demand booking with a cap a price within it;
- a gang is whole: it has a booking for each of its GPUs, all with one window, one rental
  type (and an interruptible gang one bid), and they ended together (the same way, at the
  same moment)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from math import ceil
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.accounts.ledger_invariants import assert_ledger_invariants
from tests.support.api import ADMIN_KEY, PG_URL
from tests.support.money import half_up, units
from tests.support.nodes import Node
from tests.support.waiting import until

pytestmark = pytest.mark.skipif(not PG_URL, reason="server processes on one PostgreSQL")
NOTICE = 1
CLIENTS = ("c1", "c2", "c3", "c4")
MINERS = ("m1", "m2")
DEPOSIT = "300"
STEPS_PER_CLIENT = 60


@pytest.fixture
def nodes(database_url: str) -> Iterator[list[Node]]:
    three = [Node(database_url, preempt_notice_seconds=str(NOTICE)) for _ in range(3)]
    for node in three:
        node.start()
    try:
        for node in three:
            until(node.ready, 30, "a node")
        yield three
    finally:
        for node in three:
            node.stop()


class Run:
    def __init__(self, nodes: list[Node], seed: int) -> None:
        self.nodes, self.seed = nodes, seed
        self.keys: dict[str, str] = {}
        self.silent: set[str] = set()
        self.done = threading.Event()
        self.asked: dict[str, dict[str, Any]] = {}  # booking id: what its client asked
        self.lock = threading.Lock()
        self.errors: list[str] = []

    def call(self, rng: random.Random, key: str, method: str, path: str, **kw: Any) -> Any:
        node = rng.choice(self.nodes)
        response = httpx.request(
            method, node.url + path, headers={"X-Api-Key": key}, timeout=20, **kw
        )
        if response.status_code >= 500:
            self.errors.append(f"{method} {path}: {response.status_code} {response.text}")
        return response

    def beat(self) -> None:
        rng = random.Random(self.seed)
        while not self.done.wait(0.4):
            for miner in MINERS:
                if miner not in self.silent:
                    self.call(rng, self.keys[miner], "POST", "/v1/miners/heartbeat", json={})

    def setup(self) -> list[str]:
        rng = random.Random(self.seed)
        admin = ADMIN_KEY
        for owner, role in [*((c, "client") for c in CLIENTS), *((m, "miner") for m in MINERS)]:
            body = {"role": role, "owner_id": owner}
            made = self.call(rng, admin, "POST", "/v1/admin/api-keys", json=body)
            assert made.status_code == 201, made.text
            self.keys[owner] = made.json()["key"]
        for client in CLIENTS:
            paid = self.call(
                rng, admin, "POST", f"/v1/admin/accounts/{client}/deposit",
                json={"amount": DEPOSIT}, params={"create": "true"},
            )  # fmt: skip
            assert paid.status_code == 201, paid.text
        gpus = []
        for miner, region in zip(MINERS, ("eu", "us"), strict=True):
            for price in ("1.5", "1.2", "2", "1.8"):
                spec = {"name": "RTX 4090", "memory_gb": 24, "price_per_hour": price}
                made = self.call(
                    rng, self.keys[miner], "POST", "/v1/marketplace/gpu/register",
                    json={"gpu": spec | {"region": region}},
                )  # fmt: skip
                assert made.status_code == 201, made.text
                gpus.append(made.json()["gpu_id"])
        return gpus

    def client(self, name: str, gpus: list[str]) -> None:
        rng = random.Random(f"{self.seed}-{name}")
        key = self.keys[name]
        mine: list[str] = []
        for _ in range(STEPS_PER_CLIENT):
            roll = rng.random()
            hours = "0.0005"  # on demand: 1.8 seconds
            long = rng.choice(["0.001", "0.002", "0.003"])  # interruptible: 3.6 to 10.8
            bid = f"{rng.randint(60, 118) / 100:.2f}"  # 0.6 to 1.18: above every floor
            if roll < 0.15:
                gpu = rng.choice(gpus)
                body: dict[str, Any] = {"duration_hours": hours}
                if rng.random() < 0.3:
                    body["max_price_per_hour"] = rng.choice(["1.2", "1.5"])
                self.booked(rng, key, f"/v1/marketplace/gpu/{gpu}/book", body, mine)
            elif roll < 0.36:
                gpu = rng.choice(gpus)
                body = {"duration_hours": long, "rental_type": "interruptible"}
                self.booked(
                    rng, key, f"/v1/marketplace/gpu/{gpu}/book", body | {"bid_per_hour": bid}, mine
                )
            elif roll < 0.48:  # contest a GPU held interruptibly: on demand, or outbid it
                gpu = rng.choice(gpus)
                shown = self.call(rng, key, "GET", f"/v1/marketplace/gpu/{gpu}").json()
                winning = shown["market"]["lowest_winning_bid"]
                body = {"duration_hours": hours}
                if winning is not None and rng.random() < 0.5:
                    body = {"duration_hours": long, "rental_type": "interruptible"}
                    body["bid_per_hour"] = winning
                self.booked(rng, key, f"/v1/marketplace/gpu/{gpu}/book", body, mine)
            elif roll < 0.56:  # a gang of two or three, on demand or interruptible
                body = {"duration_hours": hours, "count": rng.choice([2, 3])}
                body["placement"] = rng.choice(["same_miner", "same_region"])
                if rng.random() < 0.6:
                    body |= {"rental_type": "interruptible", "bid_per_hour": bid}
                    body["duration_hours"] = long
                self.booked(rng, key, "/v1/marketplace/book", body, mine)
            elif roll < 0.72:
                body = {"duration_hours": hours, "region": rng.choice(["eu", "us"])}
                if rng.random() < 0.5:
                    body |= {"rental_type": "interruptible", "bid_per_hour": bid}
                    body["duration_hours"] = long
                else:
                    body["max_price_per_hour"] = rng.choice(["1.2", "1.5", "2"])
                self.booked(rng, key, "/v1/marketplace/book", body, mine)
            elif roll < 0.84 and mine:
                booking = rng.choice(mine)
                asked = self.asked[booking]
                if asked.get("rental_type") == "interruptible":
                    higher = f"{float(asked['bid_per_hour']) + rng.choice([0.05, 0.2]):.2f}"
                    path = f"/v1/bookings/{booking}/bid"
                    raised = self.call(rng, key, "POST", path, json={"bid_per_hour": higher})
                    if raised.status_code == 200:
                        with self.lock:
                            asked["bid_per_hour"] = higher
            elif roll < 0.94 and mine:
                self.call(rng, key, "POST", f"/v1/bookings/{rng.choice(mine)}/release")
            elif roll < 0.96:
                miner = rng.choice(MINERS)
                self.silent.add(miner)
                timer = threading.Timer(rng.choice([1.0, 3.0]), self.silent.discard, [miner])
                timer.start()
            time.sleep(rng.random() * 0.4)

    def booked(
        self, rng: random.Random, key: str, path: str, body: dict[str, Any], mine: list[str]
    ) -> None:
        answer = self.call(rng, key, "POST", path, json=body)
        if answer.status_code == 201:
            made = answer.json()
            lines = made["lines"] if "gang_id" in made and "lines" in made else [made]
            with self.lock:
                for line in lines:
                    self.asked[line["booking_id"]] = dict(body)
            mine.extend(line["booking_id"] for line in lines)


def test_the_market_keeps_its_rules_across_processes(nodes: list[Node], database_url: str) -> None:
    run = Run(nodes, 20261205)
    gpus = run.setup()
    beating = threading.Thread(target=run.beat)
    beating.start()
    try:
        clients = [threading.Thread(target=run.client, args=(c, gpus)) for c in CLIENTS]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        run.silent.clear()
        until(lambda: _all_settled(database_url), 40, "every booking settled")
    finally:
        run.done.set()
        beating.join()
    assert not run.errors, run.errors[:5]
    figures = assert_ledger_invariants(database_url)
    assert figures.held_by_users == units(DEPOSIT) * len(CLIENTS)
    assert figures.external == -figures.held_by_users
    _check_bookings(database_url, run.asked)


def _all_settled(database_url: str) -> bool:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return not conn.execute(text("SELECT 1 FROM bookings WHERE status = 'open'")).first()
    finally:
        engine.dispose()


def _check_bookings(database_url: str, asked: dict[str, dict[str, Any]]) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            bookings = {r.id: r for r in conn.execute(text("SELECT * FROM bookings"))}
            gangs = {r.id: r for r in conn.execute(text("SELECT * FROM gangs"))}
            notices = {
                r.subject_id: json.loads(r.data)["preemption"]
                for r in conn.execute(
                    text("SELECT subject_id, data FROM events WHERE type = 'booking.preempted'")
                )
            }
    finally:
        engine.dispose()
    assert set(asked) == set(bookings)  # every booking made was answered
    _check_gangs(bookings, gangs)
    statuses = {b.status for b in bookings.values()}
    assert {"preempted", "completed"} <= statuses, statuses
    preempted = [b for b in bookings.values() if b.status == "preempted"]
    assert len(preempted) >= 10, len(preempted)
    for b in preempted:
        notice = notices[b.id]
        noticed = datetime.fromisoformat(notice["noticed_at"]).replace(tzinfo=None)
        taken = _naive(b.ended_at)
        start, end = _naive(b.start_time), _naive(b.end_time)
        if start < noticed:  # it had begun: it kept the GPU for the notice, or to its end
            assert taken >= min(end, noticed + timedelta(seconds=NOTICE)), b
        assert b.charged_units == _charged(b, taken), b
    for booking_id, request in asked.items():
        b = bookings[booking_id]
        assert b.rental_type == request.get("rental_type", "on_demand")
        if b.rental_type == "interruptible":
            assert b.price_units == units(request["bid_per_hour"]), (b, request)
        elif "max_price_per_hour" in request:
            assert b.price_units <= units(request["max_price_per_hour"]), (b, request)
        assert b.charged_units <= b.total_units


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None)


def _charged(b: Any, at: datetime) -> int:
    """The reference charge of a booking ended at ``at``: whole seconds used (a started one
    counting), less offline seconds refunded; the seconds before its last bid change at
    their price, the rest pro rata."""
    elapsed = (at - _naive(b.start_time)).total_seconds()
    used = max(0, min(b.booked_seconds, ceil(elapsed)))
    served = max(0, used - b.outage_seconds)
    held = b.total_units - b.outage_refund_units
    if served >= b.booked_seconds:
        return min(int(b.total_units), int(held))
    rest = half_up(
        (b.total_units - b.fixed_units) * max(0, served - b.fixed_seconds),
        b.booked_seconds - b.fixed_seconds,
    )
    return min(int(b.fixed_units) + rest, int(held))


def _check_gangs(bookings: dict[str, Any], gangs: dict[str, Any]) -> None:
    assert len(gangs) >= 5, len(gangs)
    lines: dict[str, list[Any]] = {gang_id: [] for gang_id in gangs}
    for b in bookings.values():
        if b.gang_id is not None:
            lines[b.gang_id].append(b)
    statuses = set()
    for gang_id, gang in gangs.items():
        mine = lines[gang_id]
        assert len(mine) == gang.size, (gang, mine)
        assert len({b.gpu_id for b in mine}) == gang.size
        assert len({(b.start_time, b.end_time, b.rental_type) for b in mine}) == 1, mine
        if mine[0].rental_type == "interruptible":  # one bid (on demand: each GPU's price)
            assert len({b.price_units for b in mine}) == 1, mine
        assert len({(b.status, b.ended_at) for b in mine}) == 1, mine  # ended together
        statuses.add(mine[0].status)
        if gang.placement == "same_miner":
            assert len({b.miner_id for b in mine}) == 1, mine
    assert "preempted" in statuses, statuses
