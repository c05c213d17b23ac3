"""Bookings of a GPU this process recently found booked (bookings.busy): refused without the
GPU's row lock when a booking covers the start, with exactly the answers the locked checks
give, and booked as usual when nothing does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from aitbc.bookings.busy import BusyGpus
from tests.bookings.booking_support import Trio, book, market, parse_time, release_gpu
from tests.support.api import PG_URL, Api
from tests.support.market import booked, heartbeat
from tests.support.responses import assert_error


@pytest.fixture
def m(api: Api) -> Trio:
    return market(api)


def _busy(api: Api) -> BusyGpus:
    busy: BusyGpus = api.client.app.state.busy_gpus  # type: ignore[attr-defined]
    return busy


def test_a_booked_gpu_is_refused_as_booked_until_its_end(api: Api, m: Trio) -> None:
    first = booked(api, m.client, m.gpu, 2)
    assert m.gpu in _busy(api)
    for _ in range(3):
        refused = assert_error(book(api, m.other, m.gpu, 1), 409, "gpu_booked")
        assert refused["detail"] == f"This GPU is booked until {first['end_time']}."


def test_a_start_inside_a_reservation_is_refused_as_an_overlap(api: Api, m: Trio) -> None:
    start = api.clock.now() + timedelta(hours=2)
    reserved = booked(api, m.client, m.gpu, 1, start_time=start.isoformat())
    inside = (start + timedelta(minutes=30)).isoformat()
    refused = assert_error(book(api, m.other, m.gpu, 1, start_time=inside), 409, "booking_overlap")
    assert reserved["start_time"] in refused["detail"] and reserved["end_time"] in refused["detail"]
    # A window that ends inside the reservation is refused under the lock, as before.
    assert_error(book(api, m.other, m.gpu, 3), 409, "booking_overlap")
    # Back to back with it is fine: nothing covers that start.
    after = booked(api, m.other, m.gpu, 1, start_time=(start + timedelta(hours=1)).isoformat())
    assert parse_time(after["start_time"]) == start + timedelta(hours=1)


def test_an_offline_gpu_is_still_refused_as_offline(api: Api, m: Trio) -> None:
    booked(api, m.client, m.gpu, 2)
    api.clock.advance(seconds=91)  # its miner falls silent while it is booked
    assert_error(book(api, m.other, m.gpu, 1), 409, "gpu_offline")
    heartbeat(api, m.miner)
    assert_error(book(api, m.other, m.gpu, 1), 409, "gpu_booked")


def test_a_released_gpu_books_again_at_once(api: Api, m: Trio) -> None:
    booked(api, m.client, m.gpu, 2)
    assert_error(book(api, m.other, m.gpu, 1), 409, "gpu_booked")
    assert release_gpu(api, m.client, m.gpu).status_code == 200
    assert m.gpu in _busy(api)
    assert booked(api, m.other, m.gpu, 1)["client_id"] == "c2"


def test_the_hint_is_bounded_and_short_lived() -> None:
    busy = BusyGpus(keep_seconds=3600, max_gpus=2)
    for gpu in ("a", "b", "c"):
        busy.add(gpu)
    assert ("a" in busy, "b" in busy, "c" in busy) == (False, True, True)
    busy.add("b")  # seen again: now the newest
    busy.add("d")
    assert ("b" in busy, "c" in busy, "d" in busy) == (True, False, True)
    gone = BusyGpus(keep_seconds=0)
    gone.add("a")
    assert "a" not in gone


@pytest.fixture
def gpu_row_held(database_url: str) -> Iterator[tuple[threading.Event, threading.Thread]]:
    """A transaction elsewhere holds the GPU rows' locks until the event is set (or a
    minute has passed); its thread lives as long as it holds them."""
    release = threading.Event()
    held = threading.Event()
    engine = create_engine(database_url)

    def hold() -> None:
        with engine.begin() as conn:
            conn.execute(text("SELECT id FROM gpus FOR UPDATE"))
            held.set()
            release.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(30)
    yield release, thread
    release.set()
    thread.join()
    engine.dispose()


@pytest.mark.skipif(not PG_URL, reason="row locks are PostgreSQL's (SQLite locks the database)")
def test_a_busy_gpu_is_refused_while_another_transaction_holds_its_row(
    api: Api, m: Trio, request: pytest.FixtureRequest
) -> None:
    booked(api, m.client, m.gpu, 2)
    release, holder = request.getfixturevalue("gpu_row_held")
    # Without the hint this request would wait for the lock until the holder gave up.
    assert_error(book(api, m.other, m.gpu, 1), 409, "gpu_booked")
    assert holder.is_alive(), "the refusal waited for the row lock"
    release.set()


def test_a_request_that_read_its_clock_before_the_winning_booking_is_told_booked(
    api: Api, m: Trio
) -> None:
    """Requests that race for a GPU each read the clock when they arrive; the winner's booking
    may then start a moment after a loser's reading. The loser is told the GPU is booked, not
    that its window overlaps a reservation."""
    winner = booked(api, m.client, m.gpu, 2)
    api.clock.advance(microseconds=-1500)  # the loser's reading, taken a moment earlier
    refused = assert_error(book(api, m.other, m.gpu, 1), 409, "gpu_booked")
    assert refused["detail"] == f"This GPU is booked until {winner['end_time']}."
