"""The event log against what happened, on PostgreSQL with two server processes: a seeded
random run of bookings, releases, extensions, deposits, jobs and cancellations, with miners
going silent, servers killed (kill -9) and restarted, and the webhook receiver down for a
while. Afterwards:

- every committed change has its event, and no event is without its change;
- every event reached the receiver at least once, correctly signed, in order for each
  object, and the deliveries de-duplicate to exactly the log;

and a feed's long poll on one process wakes within a second of a booking on the other."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from aitbc.webhooks.signing import HEADER, verify
from tests.support.api import ADMIN_KEY, PG_URL
from tests.support.nodes import Node
from tests.support.receiver import Receiver, receiving
from tests.support.waiting import until

pytestmark = pytest.mark.skipif(not PG_URL, reason="two server processes on one PostgreSQL")
CLIENTS = ("c1", "c2")
MINERS = ("m1", "m2")
STEPS = 250
GPUS_EACH = 8  # enough that most bookings find a GPU free: the run changes a lot
ENDED = ("released", "cancelled", "completed", "interrupted")


class Run:
    """The calls of the run, each to a live node chosen at random."""

    def __init__(self, nodes: list[Node], rng: random.Random) -> None:
        self.nodes = nodes
        self.rng = rng
        self.keys: dict[str, str] = {}
        self.silent: set[str] = set()
        self.done = threading.Event()
        self.later: list[threading.Timer] = []

    def after(self, seconds: float, work: Any, *args: Any) -> None:
        timer = threading.Timer(seconds, work, args)
        self.later.append(timer)
        timer.start()

    def call(self, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """None when the node died under the call (its outcome is whatever committed). A node
        still starting refuses the connection: the call, never made, goes to the other."""
        live = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        for node in self.rng.sample(live, len(live)):
            try:
                return httpx.request(
                    method, node.url + path, headers={"X-Api-Key": key}, timeout=10, **kwargs
                )
            except httpx.ConnectError:
                continue
            except httpx.HTTPError:
                return None
        return None

    def beat(self) -> None:
        """The miners' heartbeats, every half second, but for those kept silent."""
        while not self.done.wait(0.5):
            for miner in MINERS:
                if miner not in self.silent:
                    self.call(self.keys[miner], "POST", "/v1/miners/heartbeat", json={})


@pytest.fixture
def nodes(database_url: str) -> Iterator[list[Node]]:
    pair = [Node(database_url), Node(database_url)]
    for node in pair:
        node.start()
    try:
        for node in pair:
            until(node.ready, 30, "a node")
        yield pair
    finally:
        for node in pair:
            node.stop()


def _setup(run: Run, receiver: Receiver) -> dict[str, dict[str, Any]]:
    for owner, role in [*((c, "client") for c in CLIENTS), *((m, "miner") for m in MINERS)]:
        made = httpx.post(
            f"{run.nodes[0].url}/v1/admin/api-keys",
            headers={"X-Api-Key": ADMIN_KEY},
            json={"role": role, "owner_id": owner},
        )
        assert made.status_code == 201, made.text
        run.keys[owner] = made.json()["key"]
    hooks = {}
    for owner in (*CLIENTS, MINERS[0]):
        made = httpx.post(
            f"{run.nodes[0].url}/v1/webhooks",
            headers={"X-Api-Key": run.keys[owner]},
            json={"url": receiver.url},
        )
        assert made.status_code == 201, made.text
        hooks[made.json()["webhook_id"]] = made.json() | {"owner": owner}
    for client in CLIENTS:
        deposit = httpx.post(
            f"{run.nodes[0].url}/v1/admin/accounts/{client}/deposit",
            headers={"X-Api-Key": ADMIN_KEY},
            json={"amount": "500"},
            params={"create": "true"},
        )
        assert deposit.status_code == 201, deposit.text
    for miner in MINERS:
        for _ in range(GPUS_EACH):
            gpu = {"name": "RTX 4090", "memory_gb": 24, "price_per_hour": "1.5"}
            made = httpx.post(
                f"{run.nodes[0].url}/v1/marketplace/gpu/register",
                headers={"X-Api-Key": run.keys[miner]},
                json={"gpu": gpu},
            )
            assert made.status_code == 201, made.text
    return hooks


def _operate(run: Run, receiver: Receiver) -> None:
    rng = run.rng
    gpus = [g["gpu_id"] for g in httpx.get(f"{run.nodes[0].url}/v1/marketplace/gpu/list").json()]
    bookings: dict[str, list[str]] = defaultdict(list)
    jobs: dict[str, list[str]] = defaultdict(list)
    for step in range(STEPS):
        client = rng.choice(CLIENTS)
        key = run.keys[client]
        roll = rng.random()
        if roll < 0.30:
            hours = rng.choice(["0.001", "0.002", "0.005"])  # 3.6 to 18 seconds
            body = {"gpu_id": (gpu := rng.choice(gpus)), "duration_hours": hours}
            answer = run.call(key, "POST", f"/v1/marketplace/gpu/{gpu}/book", json=body)
            if answer is not None and answer.status_code == 201:
                bookings[client].append(answer.json()["booking_id"])
        elif roll < 0.45 and bookings[client]:
            booking = rng.choice(bookings[client])
            run.call(key, "POST", f"/v1/bookings/{booking}/release")
        elif roll < 0.52 and bookings[client]:
            booking = rng.choice(bookings[client])
            run.call(key, "POST", f"/v1/bookings/{booking}/extend", json={"hours": "0.001"})
        elif roll < 0.60:
            run.call(
                ADMIN_KEY,
                "POST",
                f"/v1/admin/accounts/{client}/deposit",
                json={"amount": str(rng.randint(1, 50))},
            )
        elif roll < 0.70:
            job = {"payload": {"n": step}, "duration_hours": "0.002", "ttl_seconds": 60}
            answer = run.call(key, "POST", "/v1/jobs", json=job)
            if answer is not None and answer.status_code == 201:
                jobs[client].append(answer.json()["job_id"])
        elif roll < 0.76 and jobs[client]:
            run.call(key, "POST", f"/v1/jobs/{rng.choice(jobs[client])}/cancel")
        elif roll < 0.80:
            miner = rng.choice(MINERS)  # silent for a while: its GPUs go offline
            run.silent.add(miner)
            run.after(rng.choice([1.0, 5.0]), run.silent.discard, miner)
        elif roll < 0.84:
            node = rng.choice(run.nodes)
            if sum(n.process is not None and n.process.poll() is None for n in run.nodes) == 2:
                node.kill()
                run.after(1.5, node.start)
        elif roll < 0.87 and receiver.port and receiver._server is not None:
            receiver.stop()
            run.after(3.0, receiver.start)
        time.sleep(0.005)


Read = Callable[[str], list[Any]]


@contextmanager
def _snapshot(database_url: str) -> Iterator[Read]:
    """Reads that all see the database as of one moment (a repeatable-read transaction)."""
    engine = create_engine(database_url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn, conn.begin():

            def read(sql: str) -> list[Any]:
                return list(conn.execute(text(sql)))

            yield read
    finally:
        engine.dispose()


def _unnumbered(database_url: str) -> int:
    with _snapshot(database_url) as read:
        return int(read("SELECT count(*) FROM events_waiting")[0][0])


def _owners_log(read: Read, owner: str) -> list[int]:
    rows = read(
        f"SELECT event_id FROM event_recipients WHERE owner_id = '{owner}' ORDER BY event_id"
    )
    return [r.event_id for r in rows]


def test_the_log_is_the_changes_and_webhooks_deliver_it_exactly(
    nodes: list[Node], database_url: str
) -> None:
    run = Run(nodes, random.Random(20261205))
    with receiving() as receiver:
        hooks = _setup(run, receiver)
        beating = threading.Thread(target=run.beat)
        beating.start()
        try:
            _operate(run, receiver)
            for timer in run.later:  # the silences, restarts and the receiver's absence end
                timer.join()
            for node in nodes:
                until(node.ready, 30, "the nodes back")
            until(lambda: not _unnumbered(database_url), 10, "every event numbered")
            # One snapshot: what the log says and what changed, as of one moment (the
            # sweepers go on settling meanwhile).
            with _snapshot(database_url) as read:
                _check_the_log(read)
                logs = {hook["owner"]: _owners_log(read, hook["owner"]) for hook in hooks.values()}
            _check_deliveries(receiver, hooks, logs)
        finally:
            run.done.set()
            beating.join()


def _check_the_log(read: Read) -> None:
    # Every event, numbered or not yet, with its number if it has one.
    events = read(
        "SELECT DISTINCT r.event_id AS id, e.type, e.subject_id, e.data FROM events e "
        "LEFT JOIN event_recipients r ON r.row_id = e.row_id ORDER BY 1"
    )
    # The run changed a lot, of every kind (a guard against a run that did next to nothing).
    assert len(events) > 150
    assert {e.type for e in events} >= {
        "account.deposit",
        "booking.created",
        "booking.released",
        "booking.ending_soon",
        "order.refunded",
        "job.queued",
        "job.assigned",
        "job.cancelled",
        "gpu.offline",
        "gpu.back",
    }
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids)
    assert all(e.id is not None for e in events)  # each numbered and for someone
    told = Counter((e.type, e.subject_id) for e in events)
    bookings = read("SELECT id, status FROM bookings")
    assert len(bookings) > 10
    for booking in bookings:
        assert told["booking.created", booking.id] == 1, booking
        for status in ENDED:
            assert told[f"booking.{status}", booking.id] == (booking.status == status), booking
    booked = {b.id for b in bookings}
    assert {e.subject_id for e in events if e.type.startswith("booking.")} <= booked
    statuses = Counter(b.status for b in bookings)
    assert statuses["released"] and statuses["open"]
    deposits = {row.id for row in read("SELECT id FROM ledger_transactions WHERE kind = 'deposit'")}
    told_deposits = [json.loads(e.data) for e in events if e.type == "account.deposit"]
    assert sorted(d["transaction_id"] for d in told_deposits) == sorted(deposits)
    jobs = read("SELECT id, state FROM jobs")
    assert jobs
    for job in jobs:
        assert told["job.queued", job.id] == 1, job
        assert told["job.cancelled", job.id] == (job.state == "cancelled"), job
    # Per GPU, offline and back alternate, starting with offline.
    per_gpu: dict[str, list[str]] = defaultdict(list)
    for e in events:
        if e.type in ("gpu.offline", "gpu.back"):
            per_gpu[e.subject_id].append(e.type)
    assert per_gpu, "no silence was noticed"
    for seen in per_gpu.values():
        expected = ["gpu.offline", "gpu.back"] * len(seen)
        assert seen == expected[: len(seen)], seen


def _check_deliveries(
    receiver: Receiver, hooks: dict[str, dict[str, Any]], logs: dict[str, list[int]]
) -> None:
    """Each webhook got its owner's log (from its making on, up to the snapshot) at least
    once, signed, and in order once de-duplicated."""
    wanted = {
        hook_id: [i for i in logs[hook["owner"]] if i > hook["last_event_id"]]
        for hook_id, hook in hooks.items()
    }

    def first_seen() -> dict[str, list[int]]:
        seen: dict[str, list[int]] = defaultdict(list)
        for got in list(receiver.got):
            hook_id, event_id = got.headers["X-Aitbc-Webhook-Id"], got.body["id"]
            if event_id <= max(wanted[hook_id], default=0) and event_id not in seen[hook_id]:
                seen[hook_id].append(event_id)
        return seen

    until(lambda: all(len(first_seen()[h]) == len(w) for h, w in wanted.items()), 60, "delivery")
    now = int(time.time())
    for got in list(receiver.got):
        secret = hooks[got.headers["X-Aitbc-Webhook-Id"]]["secret"]
        assert verify(secret, got.headers[HEADER], got.raw, now=now)
    assert first_seen() == wanted
    assert sum(len(w) for w in wanted.values()) > 100


def test_a_long_poll_on_one_process_wakes_within_a_second_of_a_change_on_the_other(
    nodes: list[Node],
) -> None:
    first, second = nodes
    admin = {"X-Api-Key": ADMIN_KEY}
    key = httpx.post(
        f"{first.url}/v1/admin/api-keys", headers=admin, json={"role": "client", "owner_id": "c1"}
    ).json()["key"]
    answers: list[tuple[float, dict[str, Any]]] = []

    def wait() -> None:
        page = httpx.get(
            f"{first.url}/v1/events",
            params={"wait": 20},
            headers={"X-Api-Key": key},
            timeout=30,
        ).json()
        answers.append((time.monotonic(), page))

    waiting = threading.Thread(target=wait)
    waiting.start()
    time.sleep(1)  # the poll is waiting on the first process
    changed = time.monotonic()
    deposit = httpx.post(
        f"{second.url}/v1/admin/accounts/c1/deposit", headers=admin, json={"amount": "5"}
    )
    assert deposit.status_code == 201, deposit.text
    waiting.join(25)
    woke, page = answers[0]
    assert [e["type"] for e in page["events"]] == ["account.deposit"]
    assert woke - changed < 1.0
