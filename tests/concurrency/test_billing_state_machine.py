"""Random sequences of deposit, book now, reserve, extend, release (by booking and by GPU),
advance time (with or without heartbeats) and sweep, over three GPUs of two miners and three
clients, against a model written from the specification.

After every step: the ledger invariants hold in the database (entries balance, balances equal
their entries, none negative, no overlapping open bookings, escrow equals open bookings); the
money held by users equals the deposits; every stored balance (clients' main and escrow,
miners', the platform's fees) is exactly the model's; and one owner in turn sees, over HTTP,
the model's effective balance, escrow and unsettled figures. The sweep must settle exactly the
bookings that have run out and that nothing else settled yet.

Each example gets its own app and database (a copy of the migrated SQLite template, or the
PostgreSQL test database truncated), because pytest fixtures are per test, not per example."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from accounts.ledger_invariants import LedgerChecker
from bookings.booking_support import (
    cost_units,
    money,
    parse_time,
    seconds_of,
    split,
    units,
    used_seconds,
)
from conftest import ADMIN_KEY, PG_URL, Api
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aitbc.app import create_app
from aitbc.config import Settings
from aitbc.kit.clock import ManualClock

FEE_BPS = 100
HEARTBEAT_TIMEOUT_US = 90 * 1_000_000
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
    closed: str | None = None  # released / cancelled, or completed once settled
    charged: int = 0

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end


class BillingMachine(RuleBasedStateMachine):
    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.base = self.clock.now()
        self.now = 0
        app_settings = Settings(
            database_url=database_url,
            admin_key=ADMIN_KEY,
            sweep_interval_seconds=0,
            environment="test",
            platform_fee_bps=FEE_BPS,
        )
        self.app = create_app(app_settings, clock=self.clock)
        self.http = TestClient(self.app, raise_server_exceptions=False)
        self.http.__enter__()
        self.api = Api(client=self.http, clock=self.clock)
        self.checker = LedgerChecker(database_url)
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
        self.step = 0
        for owner in CLIENTS:
            self._deposit(owner, "5")

    def teardown(self) -> None:
        self.http.__exit__(None, None, None)
        self.checker.close()

    # The model.

    def at(self, micros: int) -> datetime:
        return self.base + timedelta(microseconds=micros)

    def running(self, b: ModelBooking) -> bool:
        """Open and not yet over: holds the GPU and the client's escrow."""
        return b.closed is None and b.end > self.now

    def due(self, b: ModelBooking) -> bool:
        """Over but not yet settled in the ledger."""
        return b.closed is None and b.end <= self.now

    def settle_gpu(self, gpu: int) -> None:
        for b in self.bookings:
            if b.gpu == gpu and self.due(b):
                b.closed, b.charged = "completed", b.total
                self.settled_completed += 1

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
            "POST", f"/v1/admin/accounts/{owner}/deposit", None, json={"amount": amount}
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
            self.settle_gpu(gpu)
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

    def _close(self, b: ModelBooking, response: Any) -> None:
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["booking_id"] == b.booking_id
        self.settle_gpu(b.gpu)
        if self.now <= b.start:
            b.closed, used = "cancelled", 0
        else:
            b.closed = "released"
            used = used_seconds(self.now - b.start, b.seconds)
        money_split = split(b.total, b.seconds, used, FEE_BPS)
        b.charged = money_split.charged
        self.main[b.client] += money_split.refund
        assert result["status"] == b.closed
        event(b.closed)
        assert result["used_seconds"] == used
        assert result["amount_charged"] == money(money_split.charged)
        assert result["refund"] == money(money_split.refund)

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
            self.expect_error(response, 403, "not_booking_owner")
        elif not self.running(b):
            self.expect_error(response, 409, "booking_ended")
        elif clash:
            self.expect_error(response, 409, "booking_overlap")
        elif self.main[b.client] < extra:
            self.expect_error(response, 402, "insufficient_funds")
        else:
            assert response.status_code == 200, response.text
            event("extended")
            self.settle_gpu(b.gpu)
            b.end, b.seconds, b.total = new_end, b.seconds + extra_seconds, b.total + extra
            self.main[b.client] -= extra
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
            self.expect_error(response, 403, "not_booking_owner")
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
        if not current:
            self.expect_error(response, 409, "nothing_to_release")
        elif not mine:
            self.expect_error(response, 403, "not_booking_owner")
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
                self.heartbeats[miner] = self.now

    def pass_time(self, micros: int) -> None:
        self.clock.advance(microseconds=micros)
        self.now += micros

    @rule(wait=st.sampled_from((0, 60_000_000, LONG_ADVANCE_US)))
    def sweep(self, wait: int) -> None:
        self.pass_time(wait)
        expected = sum(1 for b in self.bookings if self.due(b))
        assert self.app.state.sweeper.run_once() == expected
        event(f"swept {min(expected, 2)}{'+' if expected > 2 else ''}")
        for gpu in range(len(self.gpu_ids)):
            self.settle_gpu(gpu)
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
        fees = sum(b.charged * FEE_BPS // 10_000 for b in self.bookings if b.closed)
        assert figures.balance("platform") == fees
        for client in CLIENTS:
            assert figures.balance(client) == self.main[client], client
            held = sum(b.total for b in self.bookings if b.client == client and not b.closed)
            assert figures.balance(client, "escrow") == held, client
        for miner in MINERS:
            earned = sum(
                b.charged - b.charged * FEE_BPS // 10_000
                for b in self.bookings
                if b.closed and self.gpu_miner[b.gpu] == miner
            )
            assert figures.balance(miner) == earned, miner

    def expected_figures(self, owner: str) -> dict[str, str]:
        if owner in CLIENTS:
            mine = [b for b in self.bookings if b.client == owner]
            return {
                "balance": money(self.main[owner]),
                "escrow": money(sum(b.total for b in mine if self.running(b))),
                "unsettled": money(sum(b.total for b in mine if self.due(b))),
            }
        ours = [b for b in self.bookings if self.gpu_miner[b.gpu] == owner]
        paid = [b.charged for b in ours if b.closed] + [b.total for b in ours if self.due(b)]
        return {
            "balance": money(sum(c - c * FEE_BPS // 10_000 for c in paid)),
            "escrow": money(0),
            "unsettled": money(
                sum(b.total - b.total * FEE_BPS // 10_000 for b in ours if self.due(b))
            ),
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


def _fresh_databases(template_db: str, directory: Path) -> Any:
    """A factory of clean databases, one per Hypothesis example."""
    counter = itertools.count()

    def fresh() -> str:
        if PG_URL:
            engine = create_engine(template_db)
            try:
                with engine.begin() as conn:
                    tables = conn.scalars(
                        text(
                            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                            "AND tablename <> 'alembic_version'"
                        )
                    ).all()
                    names = ", ".join(f'"{t}"' for t in tables)
                    conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            finally:
                engine.dispose()
            return template_db
        target = directory / f"example-{next(counter)}.db"
        shutil.copyfile(make_url(template_db).database or "", target)
        return f"sqlite:///{target}"

    return fresh


def test_random_sequences_keep_the_books_straight(template_db: str, tmp_path: Path) -> None:
    fresh = _fresh_databases(template_db, tmp_path)
    run_state_machine_as_test(
        lambda: BillingMachine(fresh()),
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
