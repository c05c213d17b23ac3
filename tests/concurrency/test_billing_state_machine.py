"""Random sequences of deposit, book now, reserve, extend, release (by booking and by GPU),
advance time (with or without heartbeats: miners go silent and come back) and sweep, over
three GPUs of two miners and three clients, against a model written from the specification
(docs/outages.md for what a miner's silence does to its bookings).

After every step: the ledger invariants hold in the database (entries balance, balances equal
their entries, none negative, no overlapping open bookings, escrow equals open bookings); the
money held by users equals the deposits; every stored balance (clients' main and escrow,
miners', the platform's fees) is exactly the model's; and one owner in turn sees, over HTTP,
the model's effective balance, escrow and unsettled figures. The sweep must end exactly the
bookings that have run out (unless their miner may still come back) or whose miner stayed
away past the grace, and that nothing else ended yet.

Each example gets its own app and database (tests/support/machines.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    invariant,
    precondition,
    rule,
)

from aitbc.config import Settings
from tests.bookings.booking_support import parse_time
from tests.support.api import ADMIN_KEY
from tests.support.machines import AppMachine, run_machine
from tests.support.money import cost_units, half_up, money, seconds_of, units, used_seconds

FEE_BPS = 100
HEARTBEAT_TIMEOUT_US = 90 * 1_000_000
GRACE_US = 300 * 1_000_000
CLIENTS = ("c1", "c2", "c3")
MINERS = ("m1", "m2")
OWNERS = (*CLIENTS, *MINERS)
GPUS = (("m1", "0.333333"), ("m1", "1.5"), ("m2", "2.718281"))
HOURS = ("0.000278", "0.0125", "0.25", "0.5", "1", "1.5")  # 1 s, 45 s, 15 min, ...
EXTRA_HOURS = ("0.000278", "0.25", "1")
AHEAD_SECONDS = (1, 2, 30, 60, 900, 3600)
# Mostly short steps, so bookings are often released while they run; now and then long ones.
ADVANCE_US = (500_000, 1_000_000, 1_000_001, 10_000_000, 59_000_000, 600_000_000, 1_800_000_000)
LONG_ADVANCE_US = 3_600_250_000
# Time that passes just before a release, so that most releases charge part of a booking.
WAIT_US = (0, 250_000, 1_000_000, 1_000_001, 61_500_000, 900_000_000)
# One request in five comes from somebody who is not the booking's client.
SOMEONE_ELSE = st.integers(0, 4).map(lambda i: i == 0)
# Four picks in five go to a booking that is still running.
RUNNING_ONLY = st.integers(0, 4).map(lambda i: i != 0)
DEPOSITS = ("0.5", "1", "3.3", "10")


@dataclass
class ModelBooking:
    booking_id: str
    order_id: str
    gpu: int
    client: str
    start: int  # micro-seconds since the clock's start
    end: int
    seconds: int
    price: int
    total: int
    closed: str | None = None  # released / cancelled, or completed / interrupted once settled
    charged: int = 0
    outage_seconds: int = 0  # offline seconds refunded while it went on
    outage_refund: int = 0

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end


class BillingMachine(AppMachine):
    def __init__(self, database_url: str) -> None:
        super().__init__(
            Settings(
                database_url=database_url,
                admin_key=ADMIN_KEY,
                sweep_interval_seconds=0,
                environment="test",
                platform_fee_bps=FEE_BPS,
            )
        )
        self.base = self.clock.now()
        self.now = 0
        self.keys = {owner: self.api.key("client", owner) for owner in CLIENTS}
        self.keys |= {owner: self.api.key("miner", owner) for owner in MINERS}
        self.gpu_ids: list[str] = []
        self.prices: list[int] = []
        self.gpu_miner: list[str] = []
        for miner, price in GPUS:
            self.gpu_ids.append(self.api.register_gpu(self.keys[miner], price_per_hour=price))
            self.prices.append(units(price))
            self.gpu_miner.append(miner)
        self.heartbeats = dict.fromkeys(MINERS, 0)
        self.deposits = 0
        self.main = dict.fromkeys(CLIENTS, 0)
        self.bookings: list[ModelBooking] = []
        self.settled_completed = 0
        self.interrupted = 0
        self.step = 0
        for owner in CLIENTS:
            self._deposit(owner, "5")

    # The model.

    def at(self, micros: int) -> datetime:
        return self.base + timedelta(microseconds=micros)

    def running(self, b: ModelBooking) -> bool:
        """Open and not yet over: holds the GPU and the client's escrow."""
        return b.closed is None and b.end > self.now

    def silence(self, b: ModelBooking) -> tuple[int, int] | None:
        """(where the clock stopped, the deadline to come back) when the booking's miner
        went silent before the booking's end."""
        heard = self.heartbeats[self.gpu_miner[b.gpu]]
        if heard + HEARTBEAT_TIMEOUT_US >= b.end:
            return None
        return max(b.start, heard), max(b.start, heard + HEARTBEAT_TIMEOUT_US) + GRACE_US

    def split_at(self, b: ModelBooking, at: int) -> tuple[int, int]:
        """(charged, refunded of what escrow still holds) for ending at ``at``."""
        served = max(0, used_seconds(at - b.start, b.seconds) - b.outage_seconds)
        held = b.total - b.outage_refund
        charged = b.total if served >= b.seconds else half_up(b.total * served, b.seconds)
        charged = min(charged, held)
        return charged, held - charged

    def ending(self, b: ModelBooking) -> tuple[str, int] | None:
        """How a sweep now ends the open booking: (status, the moment it is charged to)."""
        if b.closed is not None:
            return None
        stopped = self.silence(b)
        if stopped is not None:
            stop, deadline = stopped
            return ("interrupted", stop) if self.now >= deadline else None
        return ("completed", b.end) if b.end <= self.now else None

    def end(self, b: ModelBooking, status: str, at: int) -> None:
        b.charged, refund = self.split_at(b, at)
        b.closed = status
        self.main[b.client] += refund
        if status == "completed":
            self.settled_completed += 1
        else:
            self.interrupted += 1
        event(status)

    def due(self, b: ModelBooking) -> bool:
        """Over (or interrupted) but not yet settled in the ledger."""
        return self.ending(b) is not None

    def settle_gpu(self, gpu: int) -> None:
        """What a request that touched the GPU settles after it: only when a booking on it
        has run out, then everything on it a sweep would."""
        ours = [b for b in self.bookings if b.gpu == gpu and b.closed is None]
        if any(b.end <= self.now for b in ours):
            for b in ours:
                ended = self.ending(b)
                if ended is not None:
                    self.end(b, *ended)

    def hear(self, miner: str) -> None:
        """A heartbeat: after a silence longer than the timeout, the miner's bookings still
        within their grace get their offline seconds back (those whose time ran out end,
        completed), the others are interrupted."""
        previous = self.heartbeats[miner]
        if self.now - previous > HEARTBEAT_TIMEOUT_US:
            for b in self.bookings:
                if (
                    self.gpu_miner[b.gpu] != miner
                    or b.closed is not None
                    or not (b.start < self.now and b.end > previous)
                ):
                    continue
                stopped = self.silence(b)
                if stopped is None:
                    continue
                stop, deadline = stopped
                if self.now >= deadline:
                    self.end(b, "interrupted", stop)
                    continue
                if b.end <= self.now:
                    # Its time ran out while the miner was away: it ends on the return,
                    # charged to the last heartbeat.
                    self.end(b, "completed", stop)
                    continue
                seconds = max(0, (min(b.end, self.now) - stop) // 1_000_000)
                refund = min(half_up(b.total * seconds, b.seconds), b.total - b.outage_refund)
                if seconds:
                    b.outage_seconds += seconds
                    b.outage_refund += refund
                    self.main[b.client] += refund
                    event("offline time refunded")
        self.heartbeats[miner] = self.now

    def offline(self, gpu: int) -> bool:
        return self.now - self.heartbeats[self.gpu_miner[gpu]] > HEARTBEAT_TIMEOUT_US

    def call(self, method: str, path: str, owner: str | None, **kwargs: Any) -> Any:
        key = ADMIN_KEY if owner is None else self.keys[owner]
        return self.api.call(method, path, key, **kwargs)

    @staticmethod
    def expect_error(response: Any, status: int, code: str) -> None:
        assert response.status_code == status, (status, code, response.text)
        assert response.json()["error"] == code, response.text
        event(f"refused: {code}")

    def _deposit(self, owner: str, amount: str) -> None:
        response = self.call(
            "POST",
            f"/v1/admin/accounts/{owner}/deposit",
            None,
            json={"amount": amount},
            params={"create": "true"},
        )
        assert response.status_code == 201, response.text
        self.deposits += units(amount)
        self.main[owner] += units(amount)

    def _book(self, client: str, gpu: int, hours: str, start: int | None) -> None:
        seconds = seconds_of(hours)
        body: dict[str, Any] = {"gpu_id": self.gpu_ids[gpu], "duration_hours": hours}
        if start is not None:
            body["start_time"] = self.at(start).isoformat()
        response = self.call(
            "POST", f"/v1/marketplace/gpu/{self.gpu_ids[gpu]}/book", client, json=body
        )
        begin = self.now if start is None else start
        end = begin + seconds * 1_000_000
        total = cost_units(money(self.prices[gpu]), seconds)
        clashes = sorted(
            (
                b
                for b in self.bookings
                if b.gpu == gpu and self.running(b) and b.overlaps(begin, end)
            ),
            key=lambda b: b.start,
        )
        if self.offline(gpu):
            self.expect_error(response, 409, "gpu_offline")
        elif clashes and clashes[0].start <= self.now:
            self.expect_error(response, 409, "gpu_booked")
        elif clashes:
            self.expect_error(response, 409, "booking_overlap")
        elif self.main[client] < total:
            self.expect_error(response, 402, "insufficient_funds")
        else:
            assert response.status_code == 201, response.text
            event("booked" if start is None else "reserved")
            result = response.json()
            assert result["status"] == ("pending" if begin > self.now else "active")
            assert result["total_cost"] == money(total)
            assert parse_time(result["start_time"]) == self.at(begin)
            assert parse_time(result["end_time"]) == self.at(end)
            self.main[client] -= total
            self.bookings.append(
                ModelBooking(
                    booking_id=result["booking_id"],
                    order_id=result["order_id"],
                    gpu=gpu,
                    client=client,
                    start=begin,
                    end=end,
                    seconds=seconds,
                    price=self.prices[gpu],
                    total=total,
                )
            )
            self.settle_gpu(gpu)

    def _close(self, b: ModelBooking, response: Any) -> None:
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["booking_id"] == b.booking_id
        offline = self.now - self.heartbeats[self.gpu_miner[b.gpu]] > HEARTBEAT_TIMEOUT_US
        stopped = self.silence(b) if offline else None
        if stopped is not None and self.now >= stopped[1]:
            status, clock = "interrupted", stopped[0]
        else:
            status = "cancelled" if self.now <= b.start else "released"
            clock = self.now if stopped is None else min(self.now, stopped[0])
        b.charged, refund = self.split_at(b, clock)
        b.closed = status
        if status == "interrupted":
            self.interrupted += 1
        self.main[b.client] += refund
        used = max(0, used_seconds(clock - b.start, b.seconds) - b.outage_seconds)
        self.settle_gpu(b.gpu)
        assert result["status"] == b.closed
        event(b.closed)
        assert result["used_seconds"] == used
        assert result["amount_charged"] == money(b.charged)
        assert result["refund"] == money(refund)

    # Rules.

    @rule(owner=st.sampled_from(CLIENTS), amount=st.sampled_from(DEPOSITS))
    def deposit(self, owner: str, amount: str) -> None:
        self._deposit(owner, amount)

    @rule(client=st.sampled_from(CLIENTS), gpu=st.integers(0, 2), hours=st.sampled_from(HOURS))
    def book_now(self, client: str, gpu: int, hours: str) -> None:
        self._book(client, gpu, hours, None)

    @rule(
        client=st.sampled_from(CLIENTS),
        gpu=st.integers(0, 2),
        hours=st.sampled_from(HOURS),
        ahead=st.sampled_from(AHEAD_SECONDS),
    )
    def reserve(self, client: str, gpu: int, hours: str, ahead: int) -> None:
        self._book(client, gpu, hours, self.now + ahead * 1_000_000)

    def pick(self, index: int, running_only: bool) -> ModelBooking:
        running = [b for b in self.bookings if self.running(b)]
        choices = running if running_only and running else self.bookings
        return choices[index % len(choices)]

    @precondition(lambda self: self.bookings)
    @rule(
        index=st.integers(0, 10_000),
        running_only=RUNNING_ONLY,
        hours=st.sampled_from(EXTRA_HOURS),
        as_other=SOMEONE_ELSE,
    )
    def extend(self, index: int, running_only: bool, hours: str, as_other: bool) -> None:
        b = self.pick(index, running_only)
        actor = next(c for c in CLIENTS if c != b.client) if as_other else b.client
        response = self.call(
            "POST", f"/v1/bookings/{b.booking_id}/extend", actor, json={"hours": hours}
        )
        extra_seconds = seconds_of(hours)
        new_end = b.end + extra_seconds * 1_000_000
        extra = cost_units(money(b.price), extra_seconds)
        clash = any(
            o is not b and o.gpu == b.gpu and self.running(o) and o.overlaps(b.end, new_end)
            for o in self.bookings
        )
        if as_other:
            self.expect_error(response, 404, "booking_not_found")
        elif not self.running(b):
            self.expect_error(response, 409, "booking_ended")
        elif self.offline(b.gpu):
            self.expect_error(response, 409, "gpu_offline")
        elif clash:
            self.expect_error(response, 409, "booking_overlap")
        elif self.main[b.client] < extra:
            self.expect_error(response, 402, "insufficient_funds")
        else:
            assert response.status_code == 200, response.text
            event("extended")
            b.end, b.seconds, b.total = new_end, b.seconds + extra_seconds, b.total + extra
            self.main[b.client] -= extra
            self.settle_gpu(b.gpu)
            result = response.json()
            assert result["total_cost"] == money(b.total)
            assert parse_time(result["end_time"]) == self.at(b.end)

    @precondition(lambda self: self.bookings)
    @rule(
        index=st.integers(0, 10_000),
        running_only=RUNNING_ONLY,
        as_other=SOMEONE_ELSE,
        wait=st.sampled_from(WAIT_US),
    )
    def release_booking(self, index: int, running_only: bool, as_other: bool, wait: int) -> None:
        b = self.pick(index, running_only)
        self.pass_time(wait)
        actor = next(c for c in CLIENTS if c != b.client) if as_other else b.client
        response = self.call("POST", f"/v1/bookings/{b.booking_id}/release", actor)
        if as_other:
            self.expect_error(response, 404, "booking_not_found")
        elif not self.running(b):
            self.expect_error(response, 409, "nothing_to_release")
        else:
            self._close(b, response)

    @rule(
        client=st.sampled_from(CLIENTS),
        gpu=st.integers(0, 2),
        targeted=RUNNING_ONLY,
        wait=st.sampled_from(WAIT_US),
    )
    def release_gpu(self, client: str, gpu: int, targeted: bool, wait: int) -> None:
        running = [b for b in self.bookings if self.running(b)]
        if targeted and running:  # mostly a GPU with a booking, by one of its clients
            target = running[gpu % len(running)]
            gpu, client = target.gpu, target.client
        self.pass_time(wait)
        response = self.call("POST", f"/v1/marketplace/gpu/{self.gpu_ids[gpu]}/release", client)
        current = sorted(
            (b for b in self.bookings if b.gpu == gpu and self.running(b)), key=lambda b: b.start
        )
        mine = [b for b in current if b.client == client]
        if not mine:  # another client's booking is not there for this client
            self.expect_error(response, 409, "nothing_to_release")
        else:
            self._close(mine[0], response)

    @rule(
        micros=st.sampled_from(ADVANCE_US) | st.just(LONG_ADVANCE_US),
        heartbeat=st.integers(0, 3).map(lambda i: i != 0),
    )
    def advance(self, micros: int, heartbeat: bool) -> None:
        self.pass_time(micros)
        if heartbeat:
            for miner in MINERS:
                response = self.call("POST", "/v1/miners/heartbeat", miner, json={})
                assert response.status_code == 200, response.text
                self.hear(miner)

    def pass_time(self, micros: int) -> None:
        self.clock.advance(microseconds=micros)
        self.now += micros

    @rule(wait=st.sampled_from((0, 60_000_000, LONG_ADVANCE_US)))
    def sweep(self, wait: int) -> None:
        self.pass_time(wait)
        endings = [(b, self.ending(b)) for b in self.bookings]
        expected = sum(1 for _, ended in endings if ended is not None)
        assert self.app.state.sweeper.run_once() == expected
        event(f"swept {min(expected, 2)}{'+' if expected > 2 else ''}")
        for b, ended in endings:
            if ended is not None:
                self.end(b, *ended)
        assert self.app.state.sweeper.run_once() == 0

    # What must hold after every step.

    @invariant()
    def ledger_is_consistent_and_matches_the_model(self) -> None:
        figures = self.checker.check()
        assert figures.held_by_users == self.deposits
        assert figures.external == -self.deposits
        assert figures.open_bookings == sum(1 for b in self.bookings if b.closed is None)
        assert figures.closed_bookings == sum(1 for b in self.bookings if b.closed)
        assert figures.transactions["booking_completed"] == self.settled_completed
        assert figures.transactions["booking_interrupted"] == self.interrupted
        fees = sum(b.charged * FEE_BPS // 10_000 for b in self.bookings if b.closed)
        assert figures.balance("platform") == fees
        for client in CLIENTS:
            assert figures.balance(client) == self.main[client], client
            held = sum(
                b.total - b.outage_refund
                for b in self.bookings
                if b.client == client and not b.closed
            )
            assert figures.balance(client, "escrow") == held, client
        for miner in MINERS:
            earned = sum(
                b.charged - b.charged * FEE_BPS // 10_000
                for b in self.bookings
                if b.closed and self.gpu_miner[b.gpu] == miner
            )
            assert figures.balance(miner) == earned, miner

    def expected_figures(self, owner: str) -> dict[str, str]:
        """What the account view shows: stored balances with what the next sweep posts."""
        pending = []
        for b in self.bookings:
            ended = self.ending(b)
            if ended is not None:
                charged, refund = self.split_at(b, ended[1])
                pending.append((b, charged, refund))
        if owner in CLIENTS:
            open_held = sum(
                b.total - b.outage_refund
                for b in self.bookings
                if b.client == owner and b.closed is None
            )
            leaving = sum(b.total - b.outage_refund for b, _, _ in pending if b.client == owner)
            return {
                "balance": money(
                    self.main[owner] + sum(r for b, _, r in pending if b.client == owner)
                ),
                "escrow": money(open_held - leaving),
                "unsettled": money(leaving),
            }
        ours = [b for b in self.bookings if self.gpu_miner[b.gpu] == owner]
        earned = sum(b.charged - b.charged * FEE_BPS // 10_000 for b in ours if b.closed)
        coming = sum(
            c - c * FEE_BPS // 10_000 for b, c, _ in pending if self.gpu_miner[b.gpu] == owner
        )
        return {
            "balance": money(earned + coming),
            "escrow": money(0),
            "unsettled": money(coming),
        }

    def check_over_http(self, owner: str) -> None:
        shown = self.call("GET", "/v1/accounts/me", owner).json()
        expected = self.expected_figures(owner)
        assert {k: shown[k] for k in expected} == expected, owner

    @invariant()
    def one_owner_in_turn_sees_the_models_figures(self) -> None:
        # Over HTTP one owner per step, in turn (a request per owner per step would double
        # the run time); everyone's stored balances are compared with the model above.
        self.step += 1
        self.check_over_http(OWNERS[self.step % len(OWNERS)])


def test_random_sequences_keep_the_books_straight(request: pytest.FixtureRequest) -> None:
    run_machine(BillingMachine, request, examples=25, steps=30)
