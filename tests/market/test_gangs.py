"""Gangs: several GPUs booked by criteria all or nothing, placed on one miner, in one region
or anywhere; one window for all; released, extended and preempted as a whole; the gang is
the order and its bookings the lines."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from aitbc.bookings import best
from tests.bookings.booking_support import (
    book,
    booked,
    extend,
    figures,
    get_booking,
    get_order,
    parse_time,
    release_booking,
    release_gpu,
)
from tests.jobs.slice_support import sweep
from tests.support.api import Api
from tests.support.market import Market, advance, heartbeat
from tests.support.money import cost_units, money, split, units
from tests.support.responses import assert_error

BOOK = "/v1/marketplace/book"
NOTICE = 30


class Gangs:
    """Miner m1 (eu): A 1.0, B 1.0, C 3.0; miner m2 (us): D 0.8, E 1.5."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.market = Market(api, miner_id="m1")
        self.m1 = self.market.miner_key
        self.m2 = self.market.miner("m2")
        self.client = self.market.client("c1", "100")
        self.other = self.market.client("c2", "100")
        self.ids: dict[str, str] = {}
        for label, key, price, region in [
            ("A", self.m1, "1", "eu"),
            ("B", self.m1, "1", "eu"),
            ("C", self.m1, "3", "eu"),
            ("D", self.m2, "0.8", "us"),
            ("E", self.m2, "1.5", "us"),
        ]:
            self.ids[label] = api.register_gpu(key, price_per_hour=price, region=region)
        self.label = {gpu: label for label, gpu in self.ids.items()}

    def beat(self) -> None:
        for key in (self.m1, self.m2):
            heartbeat(self.api, key)

    def book(self, key: str | None = None, explain: bool = False, **body: Any) -> Any:
        self.beat()
        params = {"explain": "true"} if explain else None
        payload = {"duration_hours": 1, "count": 2} | body
        return self.api.call("POST", BOOK, key or self.client, json=payload, params=params)

    def gang(self, **body: Any) -> dict[str, Any]:
        response = self.book(**body)
        assert response.status_code == 201, response.text
        made: dict[str, Any] = response.json()
        return made

    def on(self, gang: dict[str, Any]) -> list[str]:
        return [self.label[line["gpu_id"]] for line in gang["lines"]]

    def shown(self, gang_id: str, key: str | None = None) -> Any:
        return self.api.call("GET", f"/v1/gangs/{gang_id}", key or self.client)

    def pass_time(self, seconds: float) -> None:
        advance(self.api, seconds, self.m1, self.m2)


@pytest.fixture
def g(api: Api) -> Gangs:
    return Gangs(api)


def test_a_gang_on_one_miner_is_its_cheapest_group_booked_at_once(g: Gangs) -> None:
    gang = g.gang(placement="same_miner")
    # m1's best two (A, B: 2.0 an hour) against m2's (D, E: 2.3)
    assert sorted(g.on(gang)) == ["A", "B"]
    assert (gang["size"], gang["placement"], gang["status"]) == (2, "same_miner", "active")
    assert gang["rental_type"] == "on_demand"
    assert (gang["price_per_hour"], gang["total_cost"]) == ("2.000000", "2.000000")
    lines = gang["lines"]
    assert {line["gang_id"] for line in lines} == {gang["gang_id"]}
    assert {(line["start_time"], line["end_time"]) for line in lines} == {
        (gang["start_time"], gang["end_time"])
    }
    assert figures(g.api, g.client) == ("98.000000", "2.000000")
    # each line is a booking with its own order, which names the gang
    for line in lines:
        assert get_booking(g.api, g.client, line["booking_id"])["gang_id"] == gang["gang_id"]
        order = get_order(g.api, g.client, line["order_id"])
        assert (order["status"], order["gang_id"]) == ("active", gang["gang_id"])
    shown = g.shown(gang["gang_id"])
    assert shown.status_code == 200, shown.text
    assert shown.json() == gang
    # another client cannot see it; a single booking names no gang
    assert_error(g.shown(gang["gang_id"], g.other), 404, "gang_not_found")
    assert booked(g.api, g.other, g.ids["E"], 1)["gang_id"] is None


def test_placement_decides_the_group(g: Gangs) -> None:
    anywhere = g.gang()  # the cheapest two wherever they are: D (0.8) and one of A, B
    assert sorted(g.on(anywhere))[1] == "D" and sorted(g.on(anywhere))[0] in ("A", "B")
    assert anywhere["placement"] == "any"
    released = g.api.call("POST", f"/v1/gangs/{anywhere['gang_id']}/release", g.client)
    assert released.status_code == 200, released.text
    same_region = g.gang(placement="same_region")
    assert sorted(g.on(same_region)) == ["A", "B"]  # eu: 2.0 an hour; us: 2.3


def test_a_gang_is_all_or_nothing(g: Gangs) -> None:
    booked(g.api, g.other, g.ids["A"], 1)
    # m1 has B and C free, m2 D and E: no three on one miner, and nothing is booked
    refused = g.book(count=3, placement="same_miner")
    assert_error(refused, 409, "no_gang_matches")
    assert "no 3 of them on one miner" in refused.json()["detail"]
    assert figures(g.api, g.client) == ("100.000000", "0.000000")
    # a criterion that leaves no GPU at all is named, as for one GPU
    assert_error(g.book(model="H100"), 409, "no_gpu_matches")
    # funds for one GPU of the two: refused, and the first GPU is not kept
    poor = g.market.client("c3", "1.5")
    assert_error(g.book(poor, placement="same_miner"), 402, None)
    assert figures(g.api, poor) == ("1.500000", "0.000000")
    assert g.gang(placement="same_miner", count=2)["lines"]  # B and C are still free
    bookings = g.api.call("GET", "/v1/bookings", poor).json()
    assert bookings == []


def test_releasing_one_booking_releases_the_whole_gang(g: Gangs) -> None:
    gang = g.gang(placement="same_miner")
    g.pass_time(600)
    first, second = gang["lines"]
    answer = release_booking(g.api, g.client, first["booking_id"])
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["used_seconds"]) == ("released", 600)
    expected = split(cost_units("1", 3600), 3600, 600)
    for line in gang["lines"]:
        ended = get_booking(g.api, g.client, line["booking_id"])
        assert ended["status"] == "released"
        assert (ended["amount_charged"], ended["refund"]) == (
            money(expected.charged),
            money(expected.refund),
        )
    assert figures(g.api, g.client) == (money(units("100") - 2 * expected.charged), "0.000000")
    shown = g.shown(gang["gang_id"]).json()
    assert shown["status"] == "released"
    assert shown["amount_charged"] == money(2 * expected.charged)
    assert_error(release_booking(g.api, g.client, second["booking_id"]), 409, "nothing_to_release")
    again = g.api.call("POST", f"/v1/gangs/{gang['gang_id']}/release", g.client)
    assert_error(again, 409, "nothing_to_release")


def test_one_booking_of_a_gang_is_never_ended_or_changed_alone(g: Gangs) -> None:
    gang = g.gang(placement="same_miner", rental_type="interruptible", bid_per_hour="0.5")
    line = gang["lines"][0]
    assert_error(release_gpu(g.api, g.client, line["gpu_id"]), 409, "gang_member")
    raised = g.api.call(
        "POST", f"/v1/bookings/{line['booking_id']}/bid", g.client, json={"bid_per_hour": "0.6"}
    )
    assert_error(raised, 409, "gang_member")
    assert_error(release_booking(g.api, g.other, line["booking_id"]), 404, "booking_not_found")
    assert g.shown(gang["gang_id"]).json()["status"] == "active"


def test_a_gang_is_extended_whole_or_not_at_all(g: Gangs) -> None:
    gang = g.gang(placement="same_miner")
    first = gang["lines"][0]
    grown = extend(g.api, g.client, first["booking_id"], "0.5")
    assert grown.status_code == 200, grown.text
    shown = g.shown(gang["gang_id"]).json()
    assert [line["duration_hours"] for line in shown["lines"]] == ["1.500000", "1.500000"]
    assert shown["total_cost"] == "3.000000"
    assert figures(g.api, g.client) == ("97.000000", "3.000000")
    # another client reserves the second GPU right after: extending would overlap it
    second = shown["lines"][1]
    after = parse_time(second["end_time"]) + timedelta(minutes=10)
    reserved = book(g.api, g.other, second["gpu_id"], 1, start_time=after.isoformat())
    assert reserved.status_code == 201, reserved.text
    path = f"/v1/gangs/{gang['gang_id']}/extend"
    refused = g.api.call("POST", path, g.client, json={"hours": 1})
    assert_error(refused, 409, "booking_overlap")
    again = g.shown(gang["gang_id"]).json()
    assert [line["duration_hours"] for line in again["lines"]] == ["1.500000", "1.500000"]
    assert figures(g.api, g.client) == ("97.000000", "3.000000")
    fits = g.api.call("POST", path, g.client, json={"hours": "0.1"})
    assert fits.status_code == 200, fits.text
    assert fits.json()["total_cost"] == "3.200000"


def test_a_gang_is_preempted_as_a_whole(g: Gangs) -> None:
    gang = g.gang(placement="same_miner", rental_type="interruptible", bid_per_hour="0.5")
    assert sorted(g.on(gang)) == ["A", "B"]
    g.pass_time(600)
    noticed = g.api.clock.now()
    taking = booked(g.api, g.other, g.ids["A"], 1)  # on demand, on one GPU of the gang
    taken_at = noticed + timedelta(seconds=NOTICE)
    assert parse_time(taking["start_time"]) == taken_at

    expected = split(cost_units("0.5", 3600), 3600, 600 + NOTICE)
    shown = g.shown(gang["gang_id"]).json()
    assert shown["status"] == "preempted"
    for line in shown["lines"]:
        assert parse_time(line["ended_at"]) == taken_at  # each GPU kept for the notice
        assert line["amount_charged"] == money(expected.charged)
    assert figures(g.api, g.client) == (money(units("100") - 2 * expected.charged), "0.000000")
    notices = g.api.call(
        "GET", "/v1/events", g.client, params={"types": "booking.preempted"}
    ).json()["events"]
    assert sorted(e["data"]["booking_id"] for e in notices) == sorted(
        line["booking_id"] for line in gang["lines"]
    )
    b_line = next(line for line in shown["lines"] if line["gpu_id"] == g.ids["B"])
    note = get_order(g.api, g.client, b_line["order_id"])["history"][-1]["note"]
    assert f"on another GPU of its gang {gang['gang_id']}" in note
    # B is free once the notice ends, and not before
    early = book(g.api, g.other, g.ids["B"], 1)
    assert parse_time(early.json()["start_time"]) == taken_at


def test_a_gang_that_preempts_begins_on_all_its_gpus_when_the_notice_ends(g: Gangs) -> None:
    held = book(g.api, g.other, g.ids["A"], 2, rental_type="interruptible", bid_per_hour="0.4")
    assert held.status_code == 201, held.text
    noticed = g.api.clock.now()
    gang = g.gang(placement="same_miner")  # A (taking it from the bid) and B, on demand
    assert sorted(g.on(gang)) == ["A", "B"]
    taken_at = noticed + timedelta(seconds=NOTICE)
    assert {parse_time(line["start_time"]) for line in gang["lines"]} == {taken_at}
    assert gang["status"] == "pending"
    assert get_booking(g.api, g.other, held.json()["booking_id"])["status"] == "preempted"


def test_explain_shows_the_gang_it_would_take_and_books_nothing(g: Gangs) -> None:
    shown = g.book(explain=True, placement="same_region")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert sorted(g.label[gpu] for gpu in body["chosen_gang"]) == ["A", "B"]
    chosen = {c["gpu_id"] for c in body["candidates"] if c["verdict"] == "chosen"}
    assert chosen == set(body["chosen_gang"])
    assert figures(g.api, g.client) == ("100.000000", "0.000000")
    none = g.book(explain=True, count=4, placement="same_miner").json()
    assert none["chosen_gang"] is None
    single = g.book(explain=True, count=1).json()
    assert "chosen_gang" not in single


@pytest.mark.parametrize(
    ("body", "status"),
    [({"count": 0}, 422), ({"count": 17}, 422), ({"placement": "same_rack"}, 422)],
)
def test_bad_gang_requests_are_refused(g: Gangs, body: dict[str, Any], status: int) -> None:
    assert_error(g.book(**body), status, None)
    assert_error(g.shown("gng-nope"), 404, "gang_not_found")


def test_a_gang_falls_whole_beside_a_single_booking_it_is_displaced_with(g: Gangs) -> None:
    # A is held now by a single interruptible booking; the gang reserves A and B after it
    single = book(g.api, g.other, g.ids["A"], 1, rental_type="interruptible", bid_per_hour="0.4")
    assert single.status_code == 201, single.text
    later = parse_time(single.json()["end_time"])
    gang = g.gang(
        placement="same_miner", rental_type="interruptible", bid_per_hour="0.5",
        start_time=later.isoformat(),
    )  # fmt: skip
    assert sorted(g.on(gang)) == ["A", "B"]
    taker = g.market.client("c3", "100")
    taking = book(g.api, taker, g.ids["A"], 3)  # on demand over both windows on A
    assert taking.status_code == 201, taking.text
    assert get_booking(g.api, g.other, single.json()["booking_id"])["status"] == "preempted"
    shown = g.shown(gang["gang_id"]).json()
    assert [line["status"] for line in shown["lines"]] == ["preempted", "preempted"]
    assert shown["amount_charged"] == "0.000000"  # a reservation that never began


def _row(gpu: str, miner: str, region: str | None, price: int, winning: int | None = None) -> Any:
    return {
        "id": gpu, "miner_id": miner, "region": region, "effective_price_units": price,
        "winning": winning,
    }  # fmt: skip


def _ids(rows: list[Any], placement: str, rental_type: str = "on_demand") -> list[list[str]]:
    found = best.groups(rows, count=2, placement=placement, rental_type=rental_type)
    return [[row["id"] for row in group] for group in found]


def test_groups_take_each_places_best_and_order_by_total_then_rank() -> None:
    # rows best first, as the read ranks them
    rows = [
        _row("a", "m1", "EU", 5, 9),
        _row("b", "m2", "us", 6, 9),
        _row("c", "m1", "eu", 7, 3),
        _row("d", "m2", None, 6, 1),
        _row("e", "m1", "eu", 8, 1),
        _row("f", "m3", "us", 1, 1),
    ]
    # each miner's best two (m1: a, c = 12; m2: b, d = 12; m3 has one): a tie, m1 ranks first
    assert _ids(rows, "same_miner") == [["a", "c"], ["b", "d"]]
    # regions match in any case; a GPU without one is in none: us (b, f) 7, eu (a, c) 12
    assert _ids(rows, "same_region") == [["b", "f"], ["a", "c"]]
    assert _ids(rows, "any") == [["a", "b"]]
    # interruptibly, the cost is the lowest winning bid: m2's b, d (10) before m1's a, c (12)
    assert _ids(rows, "same_miner", "interruptible") == [["b", "d"], ["a", "c"]]
    assert best.groups(rows, count=4, placement="same_miner", rental_type="on_demand") == []


def test_a_gang_line_whose_miner_is_silent_is_charged_up_to_the_silence(g: Gangs) -> None:
    """The gang falls on m1's GPU while m2 has been silent from the start: D's clock
    stopped at m2's last heartbeat, so D is charged nothing, as a release would charge."""
    gang = g.gang(rental_type="interruptible", bid_per_hour="0.5")
    assert sorted(g.on(gang))[1] == "D"
    d_line = next(line for line in gang["lines"] if g.label[line["gpu_id"]] == "D")
    m1_line = next(line for line in gang["lines"] if g.label[line["gpu_id"]] != "D")
    g.api.pass_time(600, g.m1)  # m2 silent past its timeout and grace
    assert get_booking(g.api, g.client, d_line["booking_id"])["amount_charged"] == "0.000000"
    booked(g.api, g.other, m1_line["gpu_id"], 1)  # on demand: the whole gang falls
    d_ended = get_booking(g.api, g.client, d_line["booking_id"])
    assert d_ended["status"] == "preempted"
    assert (d_ended["amount_charged"], d_ended["refund"]) == ("0.000000", d_line["total_cost"])
    m1_charged = split(cost_units("0.5", 3600), 3600, 600 + NOTICE).charged
    m1_ended = get_booking(g.api, g.client, m1_line["booking_id"])
    assert m1_ended["amount_charged"] == money(m1_charged)
    assert figures(g.api, g.client) == (money(units("100") - m1_charged), "0.000000")


def test_a_gang_reads_as_its_lines_before_the_sweep(g: Gangs) -> None:
    """A line whose miner went away past the grace reads interrupted before the sweep: the
    gang's figures are its lines' as they read, and add up to its total either way."""
    gang = g.gang()  # on demand: D on m2, A or B on m1
    g.api.pass_time(600, g.m1)  # m2 silent past its timeout and grace
    before = g.shown(gang["gang_id"]).json()
    sweep(g.api)
    after = g.shown(gang["gang_id"]).json()
    assert before == after
    for field in ("amount_charged", "refund"):
        assert units(after[field]) == sum(units(line[field]) for line in after["lines"])
    assert units(after["refund"]) > 0  # the interrupted line's unserved time


def test_releasing_a_gang_by_a_line_that_already_ended_releases_the_rest(g: Gangs) -> None:
    gang = g.gang()  # on demand: D on m2, A or B on m1
    d_line = next(line for line in gang["lines"] if g.label[line["gpu_id"]] == "D")
    other = next(line for line in gang["lines"] if g.label[line["gpu_id"]] != "D")
    g.api.pass_time(600, g.m1)  # m2 silent past its timeout and grace
    sweep(g.api)
    assert get_booking(g.api, g.client, d_line["booking_id"])["status"] == "interrupted"
    answer = release_booking(g.api, g.client, d_line["booking_id"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "interrupted"  # the named booking, as it ended
    assert get_booking(g.api, g.client, other["booking_id"])["status"] == "released"
    assert g.shown(gang["gang_id"]).json()["status"] != "active"
    assert_error(release_booking(g.api, g.client, d_line["booking_id"]), 409, "nothing_to_release")
