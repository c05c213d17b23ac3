"""How a booking's end divides its money, checked on the domain functions directly (no HTTP,
no database) against the reference arithmetic: the status by the moment it ends, the charge
pro rata of whole seconds used, the fee, the refund, and legs that always balance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from aitbc.bookings.lifecycle import Outage
from aitbc.bookings.records import BookingRecord
from aitbc.bookings.settlement import legs, outcome
from aitbc.models.account import ESCROW, MAIN, PLATFORM_OWNER
from tests.support import money as ref

START = datetime(2030, 1, 1, tzinfo=UTC)


def booking(price: str = "3.6", seconds: int = 3600, **changes: object) -> BookingRecord:
    total = ref.cost_units(price, seconds)
    fields: dict[str, object] = {
        "id": "bkg_1",
        "gpu_id": "gpu_1",
        "client_id": "c1",
        "miner_id": "m1",
        "job_id": None,
        "status": "open",
        "start_time": START,
        "end_time": START + timedelta(seconds=seconds),
        "booked_seconds": seconds,
        "price_units": ref.units(price),
        "total_units": total,
        "charged_units": 0,
        "refunded_units": 0,
        "outage_seconds": 0,
        "outage_refund_units": 0,
        "created_at": START,
        "ended_at": None,
        "order_id": "ord_1",
        "order_status": "pending",
        "miner_heartbeat": START,
        "miner_status": "online",
    }
    return BookingRecord(**(fields | changes))  # type: ignore[arg-type]


prices = st.decimals(min_value="0.000001", max_value="1000", places=6).map(str)


@given(
    price=prices,
    seconds=st.integers(min_value=1, max_value=720 * 3600),
    elapsed=st.integers(min_value=0, max_value=800 * 3600 * 10**6),
    bps=st.integers(min_value=0, max_value=10_000),
)
def test_an_end_charges_the_used_seconds_pro_rata_and_balances(
    price: str, seconds: int, elapsed: int, bps: int
) -> None:
    held = booking(price, seconds)
    at = START + timedelta(microseconds=elapsed)
    end = outcome(held, at=at, fee_bps=bps)

    expected = ref.split(held.total_units, seconds, ref.used_seconds(elapsed, seconds), bps)
    assert (end.money.charged, end.money.refunded, end.money.fee) == (
        expected.charged,
        expected.refund,
        expected.fee,
    )
    assert end.status == (
        "completed" if at >= held.end_time else "cancelled" if elapsed == 0 else "released"
    )
    assert end.ended == min(at, held.end_time)

    posted = legs(held, end)
    assert sum(leg.amount_units for leg in posted) == 0
    by_account = {(leg.owner_id, leg.kind): leg.amount_units for leg in posted}
    assert by_account[("c1", ESCROW)] == -held.total_units
    assert by_account[("m1", MAIN)] == expected.provider
    assert by_account[(PLATFORM_OWNER, MAIN)] == expected.fee
    assert by_account[("c1", MAIN)] == expected.refund


def test_a_started_second_counts_and_the_end_is_never_more_than_booked() -> None:
    held = booking("3.6", 3600)  # 1,000 micro-units a second
    just_started = outcome(held, at=START + timedelta(microseconds=1), fee_bps=0)
    assert (just_started.status, just_started.money.charged) == ("released", 1_000)
    late = outcome(held, at=START + timedelta(hours=5), fee_bps=0)
    assert (late.status, late.ended, late.money.charged) == ("completed", held.end_time, 3_600_000)
    assert late.money.refunded == 0


def test_a_release_before_the_start_refunds_everything() -> None:
    later = booking(start_time=START + timedelta(hours=1), end_time=START + timedelta(hours=2))
    end = outcome(later, at=START, fee_bps=500)
    assert (end.status, end.money.charged, end.money.refunded) == ("cancelled", 0, 3_600_000)


def test_the_providers_failure_charges_nothing() -> None:
    held = booking()
    end = outcome(held, at=START + timedelta(minutes=30), fee_bps=500, full_refund=True)
    assert (end.status, end.money.charged, end.money.fee) == ("cancelled", 0, 0)
    assert end.money.refunded == held.total_units
    assert sum(leg.amount_units for leg in legs(held, end)) == 0


def test_offline_time_already_refunded_is_not_refunded_twice() -> None:
    # Ten minutes offline were refunded while the booking ran (600 s of 3,600 at 1,000/s).
    held = booking(outage_seconds=600, outage_refund_units=600_000)
    end = outcome(held, at=START + timedelta(minutes=30), fee_bps=0)
    # 1,800 s used, 600 of them offline and refunded: 1,200 s charged of what is held.
    assert (end.money.charged, end.money.refunded) == (1_200_000, 3_000_000 - 1_200_000)
    posted = legs(held, end)
    assert sum(leg.amount_units for leg in posted) == 0
    assert -min(leg.amount_units for leg in posted) == held.total_units - 600_000


def test_a_silence_past_its_grace_ends_the_booking_where_its_clock_stopped() -> None:
    held = booking()
    silence = Outage(stop=START + timedelta(minutes=10), deadline=START + timedelta(minutes=15))
    still_waiting = outcome(held, at=START + timedelta(minutes=12), fee_bps=0, silence=silence)
    assert (still_waiting.status, still_waiting.money.charged) == ("released", 600_000)
    gone = outcome(held, at=START + timedelta(minutes=20), fee_bps=0, silence=silence)
    assert (gone.status, gone.ended, gone.money.charged) == ("interrupted", silence.stop, 600_000)
    assert gone.money.refunded == held.total_units - 600_000
