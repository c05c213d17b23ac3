"""A job's life after submission: the miner's poll hands it over (or 204); the result from
that miner settles the booking (used time paid, the rest refunded), a failure refunds the
client in full; nobody else may report; TTL expiry refunds; who sees which jobs; cancel.

Prices are 3.6 per hour, so one second costs 0.001 and the arithmetic is visible."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from tests.jobs.slice_support import (
    JOB_FIELDS,
    JOBS,
    MINER_JOB_FIELDS,
    balance,
    booking,
    cancel_job,
    job,
    jobs,
    orders,
    poll,
    polled,
    report_failure,
    report_result,
    submitted,
    sweep,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import advance, booked, deposit
from tests.support.money import cost_units, money, units
from tests.support.responses import assert_error, ok

PRICE = "3.6"


@dataclass(frozen=True)
class World:
    miner: str  # m1, owns the GPU
    rival: str  # m2, another miner with its own GPU
    client: str  # c1, 100 tokens
    other: str  # c2, 100 tokens
    gpu: str
    rival_gpu: str


@pytest.fixture
def world(api: Api) -> World:
    miner = api.key("miner", "m1")
    rival = api.key("miner", "m2")
    client = api.key("client", "c1")
    other = api.key("client", "c2")
    deposit(api, "c1", "100")
    deposit(api, "c2", "100")
    gpu_id = api.register_gpu(miner, name="RTX 4090", price_per_hour=PRICE)
    rival_gpu = api.register_gpu(rival, name="A100", memory_gb=80, price_per_hour="9")
    return World(
        miner=miner, rival=rival, client=client, other=other, gpu=gpu_id, rival_gpu=rival_gpu
    )


def _running_job(api: Api, w: World, **body: object) -> dict[str, Any]:
    created = submitted(api, w.client, constraints={"gpu_model": "RTX 4090"}, **body)
    assert created["gpu_id"] == w.gpu
    handed = polled(api, w.miner)
    assert handed["job_id"] == created["job_id"]
    return created


def _gpu_is_free_again(api: Api, world: World) -> None:
    advance(api, 0, world.miner)  # a heartbeat: the miner has been silent while time passed
    assert details(api, world.gpu)["status"] == "available"


# --- poll ----------------------------------------------------------------------------------


def test_poll_without_a_job_is_204(api: Api, world: World) -> None:
    response = poll(api, world.miner)

    assert response.status_code == 204
    assert response.content == b""


def test_poll_hands_the_miner_its_assigned_job(api: Api, world: World) -> None:
    created = submitted(
        api,
        world.client,
        payload={"prompt": "hello", "steps": 20},
        duration_hours="0.5",
        ttl_seconds=7200,
        constraints={"gpu_model": "RTX 4090"},
    )
    assert created["state"] == "assigned"
    advance(api, 5, world.miner)

    response = poll(api, world.miner)

    assert response.status_code == 200, response.text
    handed = response.json()
    assert set(handed) == MINER_JOB_FIELDS
    assert handed == {
        "job_id": created["job_id"],
        "gpu_id": world.gpu,
        "booking_id": created["booking_id"],
        "payload": {"prompt": "hello", "steps": 20},
        "constraints": {
            "gpu_model": "rtx4090",
            "memory_min_gb": None,
            "ai_model": None,
            "region": None,
            "max_price_per_hour": None,
            "cuda": None,
        },
        "duration_hours": "0.500000",
        "expires_at": "2030-01-01T02:00:00Z",
        "booking_ends_at": "2030-01-01T00:30:00Z",
        "claim_expires_at": None,  # it asked for no claim
    }
    running = job(api, world.client, created["job_id"])
    assert (running["state"], running["started_at"]) == ("running", "2030-01-01T00:00:05Z")
    assert poll(api, world.miner).status_code == 204  # handed over once
    assert poll(api, world.rival).status_code == 204  # not the rival's


def test_poll_is_for_miners(api: Api, world: World) -> None:
    assert_error(poll(api, world.client), 403, "wrong_role")
    assert_error(poll(api, ADMIN_KEY), 403, "wrong_role")
    assert_error(api.call("POST", "/v1/miners/poll"), 401, "authentication_required")


def test_poll_hands_jobs_over_in_assignment_order(api: Api, world: World) -> None:
    api.register_gpu(world.miner, name="RTX 4090", price_per_hour=PRICE)
    first = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})
    advance(api, 1, world.miner)
    second = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})

    assert polled(api, world.miner)["job_id"] == first["job_id"]
    handed = polled(api, world.miner)
    assert (handed["job_id"], handed["gpu_id"]) == (second["job_id"], second["gpu_id"])
    assert second["gpu_id"] != first["gpu_id"]
    assert poll(api, world.miner).status_code == 204


# --- result --------------------------------------------------------------------------------


def test_the_result_settles_used_time_and_refunds_the_rest(api: Api, world: World) -> None:
    created = _running_job(api, world)
    assert balance(api, world.client) == ("96.400000", "3.600000")
    advance(api, 600, world.miner)

    response = report_result(api, world.miner, created["job_id"], {"tokens": 128})

    done = ok(response)
    assert set(done) == JOB_FIELDS
    assert (done["state"], done["result"], done["error"]) == ("completed", {"tokens": 128}, None)
    assert done["finished_at"] == "2030-01-01T00:10:00Z"
    charged = cost_units(PRICE, 600)
    assert money(charged) == "0.600000"
    assert balance(api, world.client) == (money(units("100") - charged), "0.000000")
    assert balance(api, world.client) == ("99.400000", "0.000000")
    assert balance(api, world.miner) == ("0.600000", "0.000000")
    settled = booking(api, world.client, created["booking_id"])
    assert (settled["status"], settled["amount_charged"], settled["refund"]) == (
        "released",
        "0.600000",
        "3.000000",
    )
    assert settled["ended_at"] == "2030-01-01T00:10:00Z"
    [order] = orders(api, world.client)
    assert (order["status"], order["job_id"]) == ("released", created["job_id"])
    _gpu_is_free_again(api, world)
    assert job(api, world.client, created["job_id"]) == done


def test_a_started_second_counts(api: Api, world: World) -> None:
    created = _running_job(api, world)
    api.clock.advance(seconds=10, microseconds=1)

    ok(report_result(api, world.miner, created["job_id"]))

    assert balance(api, world.client) == ("99.989000", "0.000000")
    assert balance(api, world.miner) == ("0.011000", "0.000000")


def test_a_result_after_the_booked_time_pays_the_whole_booking(api: Api, world: World) -> None:
    created = _running_job(api, world, duration_hours="0.5", ttl_seconds=7200)
    advance(api, 2400, world.miner)

    done = ok(report_result(api, world.miner, created["job_id"]))

    assert done["state"] == "completed"
    assert balance(api, world.client) == ("98.200000", "0.000000")
    assert balance(api, world.miner) == ("1.800000", "0.000000")
    assert booking(api, world.client, created["booking_id"])["status"] == "completed"


def test_a_job_never_reported_on_fails_an_hour_after_its_booking_ended(
    api: Api, world: World
) -> None:
    """A miner that lost its job (or an agent too old to stop it at the booking's end)
    leaves it running: an hour after the booking's end the sweep fails it, so its client
    is not left waiting; the booking, served to its end, stays paid."""
    created = _running_job(api, world, duration_hours="0.5", ttl_seconds=7200)
    advance(api, 1800 + 3600 - 60, world.miner)  # the grace not yet over
    sweep(api)
    assert job(api, world.client, created["job_id"])["state"] == "running"
    advance(api, 60, world.miner)
    sweep(api)
    failed = job(api, world.client, created["job_id"])
    assert failed["state"] == "failed" and failed["error"].startswith("no_result")
    outcome = ok(api.call("GET", f"/v1/jobs/{created['job_id']}/result", world.client))
    assert outcome["state"] == "failed"  # its result call answers now, no longer 425
    assert balance(api, world.client) == ("98.200000", "0.000000")
    assert balance(api, world.miner) == ("1.800000", "0.000000")
    assert_error(report_result(api, world.miner, created["job_id"]), 409, "job_not_running")
    told = ok(api.call("GET", "/v1/events", world.client, params={"types": "job.failed"}))
    assert [e["data"]["job_id"] for e in told["events"]] == [created["job_id"]]


def test_the_miner_hears_that_a_running_jobs_booking_ran_out_and_its_failure_is_taken(
    api: Api, world: World
) -> None:
    """The sweep completes the booking under the running job: the miner is told (its agent
    stops the job, tests/miners/test_agent.py) and reports it failed; the booking was served
    to its end and stays paid in full."""
    created = _running_job(api, world, duration_hours="0.5", ttl_seconds=7200)
    advance(api, 1800, world.miner)
    sweep(api)

    told = ok(api.call("GET", "/v1/events", world.miner, params={"types": "booking.completed"}))
    [ran_out] = told["events"]
    assert ran_out["data"]["job_id"] == created["job_id"]
    body = {"error_code": "booking_ended", "error_message": "its booked time ran out"}
    path = f"/v1/miners/{created['job_id']}/fail"
    failed = ok(api.call("POST", path, world.miner, json=body))
    assert failed["state"] == "failed" and "booking_ended" in failed["error"], failed
    assert balance(api, world.client) == ("98.200000", "0.000000")
    assert balance(api, world.miner) == ("1.800000", "0.000000")


def test_a_result_is_accepted_before_the_poll(api: Api, world: World) -> None:
    created = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})
    api.clock.advance(seconds=60)

    done = ok(report_result(api, world.miner, created["job_id"]))

    assert done["state"] == "completed"
    assert balance(api, world.client) == ("99.940000", "0.000000")


def test_a_freed_gpu_takes_the_next_queued_job(api: Api, world: World) -> None:
    first = _running_job(api, world)
    second = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})
    assert second["state"] == "queued"
    advance(api, 60, world.miner)
    ok(report_result(api, world.miner, first["job_id"]))

    handed = polled(api, world.miner)

    assert (handed["job_id"], handed["gpu_id"]) == (second["job_id"], world.gpu)
    assert job(api, world.client, second["job_id"])["state"] == "running"


# --- failure -------------------------------------------------------------------------------


def test_a_failure_refunds_the_client_in_full(api: Api, world: World) -> None:
    created = _running_job(api, world)
    advance(api, 1200, world.miner)

    failed = ok(report_failure(api, world.miner, created["job_id"], "CUDA out of memory"))

    assert (failed["state"], failed["error"], failed["result"]) == (
        "failed",
        "CUDA out of memory",
        None,
    )
    assert failed["finished_at"] == "2030-01-01T00:20:00Z"
    assert balance(api, world.client) == ("100.000000", "0.000000")
    assert balance(api, world.miner) == ("0.000000", "0.000000")
    refunded = booking(api, world.client, created["booking_id"])
    assert (refunded["status"], refunded["amount_charged"], refunded["refund"]) == (
        "cancelled",
        "0.000000",
        "3.600000",
    )
    receipt = ok(api.call("GET", f"/v1/jobs/{created['job_id']}/receipt", world.client))
    assert (receipt["seconds_charged"], receipt["cost"]) == (0, "0.000000")  # it paid nothing
    _gpu_is_free_again(api, world)


def test_a_job_its_miner_never_took_costs_nothing_even_once_its_booking_ran_out(
    api: Api, world: World
) -> None:
    """Its booking will end refunded whole: the job reads so before the sweep as after."""
    created = submitted(
        api, world.client, duration_hours="0.1", ttl_seconds=7200,
        constraints={"gpu_model": "RTX 4090"},
    )  # fmt: skip
    advance(api, 400, world.miner)  # the booking of 360 s ran out; the miner never polled
    shown = job(api, world.client, created["job_id"])
    assert (shown["state"], shown["cost"]) == ("assigned", "0.000000")
    receipt = ok(api.call("GET", f"/v1/jobs/{created['job_id']}/receipt", world.client))
    assert (receipt["seconds_charged"], receipt["cost"]) == (0, "0.000000")
    sweep(api)
    first = booking(api, world.client, created["booking_id"])
    assert (first["status"], first["amount_charged"]) == ("cancelled", "0.000000")
    assert job(api, world.client, created["job_id"])["cost"] == "0.000000"


# --- who may report ------------------------------------------------------------------------


def test_a_miner_cannot_report_on_someone_elses_job(api: Api, world: World) -> None:
    created = _running_job(api, world)
    advance(api, 300, world.miner)

    assert_error(report_result(api, world.rival, created["job_id"]), 404, "job_not_found")
    assert_error(report_failure(api, world.rival, created["job_id"]), 404, "job_not_found")

    still = job(api, world.client, created["job_id"])
    assert (still["state"], still["result"], still["error"]) == ("running", None, None)
    assert balance(api, world.client) == ("96.400000", "3.600000")
    assert balance(api, world.rival) == ("0.000000", "0.000000")
    ok(report_result(api, world.miner, created["job_id"]))
    assert balance(api, world.miner) == ("0.300000", "0.000000")


def test_nobody_reports_on_a_queued_job(api: Api, world: World) -> None:
    created = submitted(api, world.client, constraints={"gpu_model": "H100"})

    assert_error(report_result(api, world.miner, created["job_id"]), 404, "job_not_found")
    assert_error(report_failure(api, world.rival, created["job_id"]), 404, "job_not_found")
    assert job(api, world.client, created["job_id"])["state"] == "queued"


def test_only_miners_report(api: Api, world: World) -> None:
    created = _running_job(api, world)

    assert_error(report_result(api, world.client, created["job_id"]), 403, "wrong_role")
    assert_error(report_failure(api, ADMIN_KEY, created["job_id"]), 403, "wrong_role")
    assert_error(
        api.call("POST", f"/v1/miners/jobs/{created['job_id']}/result", json={"result": {}}),
        401,
    )
    assert job(api, world.client, created["job_id"])["state"] == "running"


def test_reporting_on_an_unknown_job_is_404(api: Api, world: World) -> None:
    assert_error(report_result(api, world.miner, "job_missing"), 404, "job_not_found")
    assert_error(report_failure(api, world.miner, "job_missing"), 404, "job_not_found")


@pytest.mark.parametrize("result", [[1, 2, 3], 42, "done", True, {"n": 1}])
def test_a_result_may_be_any_json_value(api: Api, world: World, result: Any) -> None:
    """A job's command prints JSON of any kind: a result the coordinator refused was
    retried by its agent for ever, its client charged all the while."""
    created = _running_job(api, world)
    api.clock.advance(seconds=60)
    done = ok(report_result(api, world.miner, created["job_id"], result))
    assert (done["state"], done["result"]) == ("completed", result)
    assert job(api, world.client, created["job_id"])["result"] == result


def test_a_result_twice_is_409(api: Api, world: World) -> None:
    created = _running_job(api, world)
    api.clock.advance(seconds=60)
    ok(report_result(api, world.miner, created["job_id"], {"n": 1}))
    api.clock.advance(seconds=60)

    assert_error(
        report_result(api, world.miner, created["job_id"], {"n": 2}), 409, "job_not_running"
    )
    assert_error(report_failure(api, world.miner, created["job_id"]), 409, "job_not_running")

    assert job(api, world.client, created["job_id"])["result"] == {"n": 1}
    assert balance(api, world.client) == ("99.940000", "0.000000")
    assert balance(api, world.miner) == ("0.060000", "0.000000")


def test_a_result_after_a_failure_is_409(api: Api, world: World) -> None:
    created = _running_job(api, world)
    ok(report_failure(api, world.miner, created["job_id"]))

    assert_error(report_result(api, world.miner, created["job_id"]), 409, "job_not_running")
    assert_error(report_failure(api, world.miner, created["job_id"]), 409, "job_not_running")
    assert balance(api, world.client) == ("100.000000", "0.000000")


@pytest.mark.parametrize(
    ("suffix", "body"),
    [
        ("result", {"result": {}, "extra": 1}),
        ("fail", {}),
        ("fail", {"error": ""}),
    ],
)
def test_bad_reports_are_422(api: Api, world: World, suffix: str, body: object) -> None:
    created = _running_job(api, world)

    response = api.call(
        "POST", f"/v1/miners/jobs/{created['job_id']}/{suffix}", world.miner, json=body
    )

    assert_error(response, 422)
    assert job(api, world.client, created["job_id"])["state"] == "running"


@pytest.mark.parametrize(
    "body",
    [
        {"error": "Traceback ...\n" + "x" * 3000},
        {"error_code": "c" * 200, "error_message": "Traceback ...\n" + "x" * 3000},
    ],
)
def test_a_long_failure_report_is_taken_cut_to_its_limit(
    api: Api, world: World, body: dict[str, str]
) -> None:
    """A daemon's traceback fails its job (refused, the job ran on at the client's cost)."""
    created = _running_job(api, world)
    path = f"/v1/miners/jobs/{created['job_id']}/fail"
    ok(api.call("POST", path, world.miner, json=body))
    failed = job(api, world.client, created["job_id"])
    assert failed["state"] == "failed"
    assert failed["error"].startswith(("Traceback", "c" * 128 + ": Traceback"))
    assert len(failed["error"]) <= 128 + 2 + 2000


def test_history_takes_the_state_words_of_the_deployed_clients(api: Api, world: World) -> None:
    """The old server's states were upper case, and it spelt CANCELED; an empty filter is
    none (a client that fills in every parameter)."""
    done = _running_job(api, world)
    ok(report_result(api, world.miner, done["job_id"]))
    gone = submitted(api, world.client, constraints={"gpu_model": "A100"})
    ok(cancel_job(api, world.client, gone["job_id"]))

    def history(status: str) -> list[str]:
        found = ok(api.call("GET", "/v1/jobs/history", world.client, params={"status": status}))
        return sorted(j["job_id"] for j in found)

    assert history("COMPLETED") == history("completed") == [done["job_id"]]
    assert history("CANCELED") == history("cancelled") == [gone["job_id"]]
    assert history("") == sorted([done["job_id"], gone["job_id"]])
    assert_error(api.call("GET", "/v1/jobs/history", world.client, params={"status": "x"}), 422)


# --- expiry --------------------------------------------------------------------------------


def test_a_running_job_outlives_its_ttl_and_is_settled_by_its_result(
    api: Api, world: World
) -> None:
    """The time-to-live bounds the wait for a GPU and a miner; a started job runs on."""
    created = _running_job(api, world, ttl_seconds=600)
    assert created["expires_at"] == "2030-01-01T00:10:00Z"

    advance(api, 601, world.miner)
    sweep(api)
    assert job(api, world.client, created["job_id"])["state"] == "running"

    done = report_result(api, world.miner, created["job_id"])
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "completed"
    settled = booking(api, world.client, created["booking_id"])
    assert settled["status"] == "released"
    charged = Decimal(settled["amount_charged"])
    assert charged > 0
    assert balance(api, world.client) == (f"{Decimal(100) - charged:.6f}", "0.000000")
    assert balance(api, world.miner) == (f"{charged:.6f}", "0.000000")
    assert details(api, world.gpu)["status"] == "available"


def test_an_assigned_job_past_its_ttl_expires_with_a_full_refund(api: Api, world: World) -> None:
    created = submitted(api, world.client, ttl_seconds=60, constraints={"gpu_model": "RTX 4090"})
    assert created["state"] == "assigned"
    advance(api, 61, world.miner)

    assert poll(api, world.miner).status_code == 204  # an expired job is not handed out
    sweep(api)

    assert job(api, world.client, created["job_id"])["state"] == "expired"
    assert balance(api, world.client) == ("100.000000", "0.000000")
    assert balance(api, world.miner) == ("0.000000", "0.000000")


def test_a_job_whose_ttl_outlives_its_booking_is_refunded_when_it_expires_unstarted(
    api: Api, world: World
) -> None:
    """The miner never picks the job up. Its booked half hour runs out before the job's
    hour to live does; when the job expires, the client gets everything back, as for any
    expired job: no work was done."""
    created = submitted(
        api,
        world.client,
        duration_hours="0.5",
        ttl_seconds=3600,
        constraints={"gpu_model": "RTX 4090"},
    )
    assert created["state"] == "assigned"
    advance(api, 1800, world.miner)
    sweep(api)
    advance(api, 1801, world.miner)
    sweep(api)

    assert job(api, world.client, created["job_id"])["state"] == "expired"
    assert balance(api, world.miner) == ("0.000000", "0.000000")
    assert balance(api, world.client) == ("100.000000", "0.000000")


def test_a_booking_that_ran_out_before_its_miner_took_the_job_is_refunded_and_the_job_waits_again(
    api: Api, world: World
) -> None:
    """The miner never polls during the job's booked quarter hour: the booking served
    nothing, so it ends refunded in full, and the job, with time to live left, goes back to
    the queue for another booking."""
    created = submitted(
        api,
        world.client,
        duration_hours="0.25",
        ttl_seconds=3600,
        constraints={"gpu_model": "RTX 4090"},
    )
    advance(api, 901, world.miner)
    sweep(api)

    first = booking(api, world.client, created["booking_id"])
    assert (first["status"], first["amount_charged"]) == ("cancelled", "0.000000")
    again = job(api, world.client, created["job_id"])
    assert again["state"] in ("queued", "assigned")
    assert again["booking_id"] != created["booking_id"]


def test_a_running_job_whose_gpu_is_lost_after_its_time_to_live_fails(
    api: Api, world: World
) -> None:
    """Its miner goes silent past the timeout and the grace; the job may no longer wait for
    another GPU, so it fails, saying why."""
    created = _running_job(api, world, ttl_seconds=600)
    api.clock.advance(seconds=90 + 600 + 1)
    sweep(api)

    lost = job(api, world.client, created["job_id"])
    assert (lost["state"], lost["booking_id"]) == ("failed", created["booking_id"])
    assert "went offline" in lost["error"]
    assert booking(api, world.client, created["booking_id"])["status"] == "interrupted"


@pytest.mark.parametrize("noticed_by", ["the sweep", "its return"])
def test_a_job_whose_miner_went_silent_before_taking_it_costs_nothing(
    api: Api, world: World, noticed_by: str
) -> None:
    """The miner heartbeats for ten minutes without taking the job, then goes silent past
    the timeout and the grace: the booking is interrupted, and as nothing ran on it, nothing
    is charged for those ten minutes; the job waits for another GPU."""
    created = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})
    advance(api, 600, world.miner)  # online, but it never polls
    api.clock.advance(seconds=90 + 300 + 1)
    if noticed_by == "the sweep":
        sweep(api)
    else:  # no sweep ran meanwhile: its heartbeat settles the silence
        advance(api, 0, world.miner)

    ended = booking(api, world.client, created["booking_id"])
    assert (ended["status"], ended["amount_charged"]) == ("interrupted", "0.000000")
    assert ended["refund"] == ended["total_cost"] == "3.600000"
    assert job(api, world.client, created["job_id"])["state"] == "queued"
    assert balance(api, world.client) == ("100.000000", "0.000000")


def test_a_job_booking_that_ran_out_unserved_while_its_miner_was_away_is_refunded(
    api: Api, world: World
) -> None:
    """The quarter hour ends while the miner is silent, within the grace; its return settles
    the booking as a sweep would have: the job never ran, so it is refunded whole and the
    job waits again."""
    created = submitted(
        api, world.client, duration_hours="0.25", constraints={"gpu_model": "RTX 4090"}
    )
    advance(api, 600, world.miner)  # online, but it never polls
    api.clock.advance(seconds=350)  # past the timeout and the booking's end, within the grace
    advance(api, 0, world.miner)  # back

    ended = booking(api, world.client, created["booking_id"])
    assert (ended["status"], ended["amount_charged"]) == ("cancelled", "0.000000")
    assert job(api, world.client, created["job_id"])["state"] == "queued"
    assert balance(api, world.client) == ("100.000000", "0.000000")


def test_poll_never_hands_out_a_job_whose_booking_has_ended(api: Api, world: World) -> None:
    """The miner polls only after the job's booked quarter hour has run out. Handing the job
    over now would have the miner run it on a GPU nobody pays for any more (and that another
    client may book at any moment): a job is handed out only with a booking that is still
    running."""
    submitted(
        api,
        world.client,
        duration_hours="0.25",
        ttl_seconds=3600,
        constraints={"gpu_model": "RTX 4090"},
    )
    advance(api, 960, world.miner)
    sweep(api)

    response = poll(api, world.miner)

    if response.status_code == 200:
        handed = response.json()
        assert handed["booking_ends_at"] > "2030-01-01T00:16:00Z", handed
        assert booking(api, world.client, handed["booking_id"])["status"] == "active"
    else:
        assert response.status_code == 204, response.text


def test_a_queued_job_expires(api: Api, world: World) -> None:
    created = submitted(api, world.client, ttl_seconds=60, constraints={"gpu_model": "H100"})

    advance(api, 60, world.miner)
    sweep(api)

    expired = job(api, world.client, created["job_id"])
    assert (expired["state"], expired["finished_at"]) == ("expired", "2030-01-01T00:01:00Z")
    api.register_gpu(world.miner, name="H100", memory_gb=80, price_per_hour="1")
    sweep(api)
    assert poll(api, world.miner).status_code == 204
    still = job(api, world.client, created["job_id"])
    assert (still["state"], still["gpu_id"], still["booking_id"]) == ("expired", None, None)
    assert orders(api, world.client) == []
    assert balance(api, world.client) == ("100.000000", "0.000000")


# --- reading jobs --------------------------------------------------------------------------


def test_a_job_is_visible_to_its_owner_its_miner_and_admins_only(api: Api, world: World) -> None:
    created = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})
    job_id = created["job_id"]

    seen = job(api, world.client, job_id)
    assert job(api, world.miner, job_id) == seen
    assert job(api, ADMIN_KEY, job_id) == seen
    assert_error(api.call("GET", f"{JOBS}/{job_id}", world.other), 404, "job_not_found")
    assert_error(api.call("GET", f"{JOBS}/{job_id}", world.rival), 404, "job_not_found")
    assert_error(api.call("GET", f"{JOBS}/{job_id}"), 401, "authentication_required")
    assert_error(api.call("GET", f"{JOBS}/job_missing", world.client), 404, "job_not_found")


def test_job_lists_are_mine_only(api: Api, world: World) -> None:
    mine_first = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})
    advance(api, 1, world.miner, world.rival)
    mine_queued = submitted(api, world.client, constraints={"gpu_model": "H100"})
    theirs = submitted(api, world.other, constraints={"gpu_model": "A100"})

    assert [j["job_id"] for j in jobs(api, world.client)] == [
        mine_queued["job_id"],
        mine_first["job_id"],
    ]
    assert [j["job_id"] for j in jobs(api, world.other)] == [theirs["job_id"]]
    assert [j["job_id"] for j in jobs(api, world.miner)] == [mine_first["job_id"]]
    assert [j["job_id"] for j in jobs(api, world.rival)] == [theirs["job_id"]]
    assert {j["job_id"] for j in jobs(api, ADMIN_KEY)} == {
        mine_first["job_id"],
        mine_queued["job_id"],
        theirs["job_id"],
    }
    assert all(set(j) == JOB_FIELDS for j in jobs(api, ADMIN_KEY))
    assert_error(api.call("GET", JOBS), 401)
    assert len(ok(api.call("GET", JOBS, ADMIN_KEY, params={"limit": 2}))) == 2
    assert_error(api.call("GET", JOBS, ADMIN_KEY, params={"limit": 0}), 422)


# --- cancel --------------------------------------------------------------------------------


def test_cancelling_a_queued_job(api: Api, world: World) -> None:
    created = submitted(api, world.client, constraints={"gpu_model": "H100"})
    advance(api, 30, world.miner)

    cancelled = ok(cancel_job(api, world.client, created["job_id"]))

    assert (cancelled["state"], cancelled["finished_at"]) == ("cancelled", "2030-01-01T00:00:30Z")
    assert balance(api, world.client) == ("100.000000", "0.000000")
    api.register_gpu(world.miner, name="H100", memory_gb=80, price_per_hour="1")
    sweep(api)
    assert poll(api, world.miner).status_code == 204
    assert job(api, world.client, created["job_id"])["state"] == "cancelled"
    assert_error(cancel_job(api, world.client, created["job_id"]), 409, "job_finished")


def test_cancelling_a_running_job_charges_the_used_time_and_frees_the_gpu(
    api: Api, world: World
) -> None:
    created = _running_job(api, world)
    advance(api, 900, world.miner)

    cancelled = ok(cancel_job(api, world.client, created["job_id"]))

    assert (cancelled["state"], cancelled["finished_at"]) == ("cancelled", "2030-01-01T00:15:00Z")
    assert balance(api, world.client) == ("99.100000", "0.000000")
    assert balance(api, world.miner) == ("0.900000", "0.000000")
    ended = booking(api, world.client, created["booking_id"])
    assert (ended["status"], ended["amount_charged"], ended["refund"]) == (
        "released",
        "0.900000",
        "2.700000",
    )
    assert details(api, world.gpu)["status"] == "available"
    again = submitted(api, world.other, constraints={"gpu_model": "RTX 4090"})
    assert (again["state"], again["gpu_id"]) == ("assigned", world.gpu)
    assert_error(report_result(api, world.miner, created["job_id"]), 409, "job_not_running")


def test_cancelling_an_assigned_job_at_once_costs_nothing(api: Api, world: World) -> None:
    created = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})

    cancelled = ok(cancel_job(api, world.client, created["job_id"]))

    assert cancelled["state"] == "cancelled"
    assert balance(api, world.client) == ("100.000000", "0.000000")
    assert poll(api, world.miner).status_code == 204


def test_cancelling_a_job_that_waited_assigned_but_never_started_costs_nothing(
    api: Api, world: World
) -> None:
    """Its GPU was held, but nothing ran on it: the client is refunded in full."""
    created = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})
    advance(api, 600, world.miner)

    cancelled = ok(cancel_job(api, world.client, created["job_id"]))

    assert cancelled["state"] == "cancelled"
    assert balance(api, world.client) == ("100.000000", "0.000000")
    ended = booking(api, world.client, created["booking_id"])
    assert (ended["amount_charged"], ended["refund"]) == ("0.000000", ended["total_cost"])


RELEASES = {
    "by booking": lambda created: f"/v1/bookings/{created['booking_id']}/release",
    "by gpu": lambda created: f"/v1/marketplace/gpu/{created['gpu_id']}/release",
}


@pytest.mark.parametrize("path", RELEASES.values(), ids=RELEASES.keys())
def test_releasing_a_running_jobs_booking_cancels_the_job_and_charges_the_used_time(
    api: Api, world: World, path: Callable[[dict[str, Any]], str]
) -> None:
    """Its client gave the GPU up: the job must not run on as if it still had it (the GPU is
    another client's to book), so it ends with its booking, as a cancelled job does."""
    created = _running_job(api, world)
    advance(api, 900, world.miner)

    released = ok(api.call("POST", path(created), world.client))

    assert (released["status"], released["amount_charged"], released["refund"]) == (
        "released",
        "0.900000",
        "2.700000",
    )
    ended = job(api, world.client, created["job_id"])
    assert (ended["state"], ended["finished_at"]) == ("cancelled", "2030-01-01T00:15:00Z")
    assert balance(api, world.client) == ("99.100000", "0.000000")
    assert balance(api, world.miner) == ("0.900000", "0.000000")
    assert_error(report_result(api, world.miner, created["job_id"]), 409, "job_not_running")
    for key in (world.client, world.miner):  # the miner's agent stops the job when told
        told = ok(api.call("GET", "/v1/events", key, params={"types": "job.cancelled"}))
        assert [e["object_id"] for e in told["events"]] == [created["job_id"]]
    again = submitted(api, world.other, constraints={"gpu_model": "RTX 4090"})
    assert (again["state"], again["gpu_id"]) == ("assigned", world.gpu)


@pytest.mark.parametrize("path", RELEASES.values(), ids=RELEASES.keys())
def test_releasing_the_booking_of_a_job_its_miner_has_not_taken_cancels_it_for_nothing(
    api: Api, world: World, path: Callable[[dict[str, Any]], str]
) -> None:
    """As cancelling the job would: nothing ran on the GPU, so nothing is charged."""
    created = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})
    advance(api, 600, world.miner)

    released = ok(api.call("POST", path(created), world.client))

    assert (released["status"], released["amount_charged"]) == ("cancelled", "0.000000")
    assert released["refund"] == released["total_cost"] == "3.600000"
    assert job(api, world.client, created["job_id"])["state"] == "cancelled"
    assert balance(api, world.client) == ("100.000000", "0.000000")
    assert balance(api, world.miner) == ("0.000000", "0.000000")
    assert poll(api, world.miner).status_code == 204


def test_releasing_a_running_jobs_booking_after_its_miner_left_cancels_the_job(
    api: Api, world: World
) -> None:
    """The miner stayed away past the grace, and no sweep has ended the booking yet: the
    release ends it interrupted (charged to the last heartbeat), and the job is cancelled,
    not put back in the queue to be booked again on the client's money."""
    created = _running_job(api, world, ttl_seconds=7200)
    advance(api, 300, world.miner)
    api.clock.advance(seconds=90 + 300 + 1)
    spare = api.register_gpu(api.key("miner", "m3"), name="RTX 4090", price_per_hour=PRICE)

    released = ok(api.call("POST", f"/v1/bookings/{created['booking_id']}/release", world.client))
    sweep(api)

    assert (released["status"], released["amount_charged"]) == ("interrupted", "0.300000")
    ended = job(api, world.client, created["job_id"])
    assert (ended["state"], ended["booking_id"]) == ("cancelled", created["booking_id"])
    assert balance(api, world.client) == ("99.700000", "0.000000")
    assert details(api, spare)["status"] == "available"


def test_cancelling_a_running_job_after_its_miner_left_does_not_requeue_it_first(
    api: Api, world: World
) -> None:
    """The cancel ends the booking interrupted; the job is cancelled and told once, keeping
    the booking it ran on."""
    created = _running_job(api, world, ttl_seconds=7200)
    advance(api, 300, world.miner)
    api.clock.advance(seconds=90 + 300 + 1)

    cancelled = ok(cancel_job(api, world.client, created["job_id"]))

    assert (cancelled["state"], cancelled["booking_id"]) == ("cancelled", created["booking_id"])
    assert booking(api, world.client, created["booking_id"])["status"] == "interrupted"
    told = ok(api.call("GET", "/v1/events", world.client, params={"types": "job.*"}))
    mine = [e["type"] for e in told["events"] if e["object_id"] == created["job_id"]]
    assert mine == ["job.queued", "job.assigned", "job.cancelled"], mine


def test_who_may_cancel(api: Api, world: World) -> None:
    created = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})
    job_id = created["job_id"]

    assert_error(cancel_job(api, world.other, job_id), 404, "job_not_found")
    assert_error(cancel_job(api, world.miner, job_id), 403, "wrong_role")
    assert_error(cancel_job(api, None, job_id), 401, "authentication_required")
    assert_error(cancel_job(api, world.client, "job_missing"), 404, "job_not_found")
    assert job(api, world.client, job_id)["state"] == "assigned"

    assert ok(cancel_job(api, ADMIN_KEY, job_id))["state"] == "cancelled"


def test_a_gpu_booked_by_hand_is_not_given_to_a_job(api: Api, world: World) -> None:
    booked(api, world.other, world.gpu, hours=1)

    created = submitted(api, world.client, constraints={"gpu_model": "RTX 4090"})

    assert created["state"] == "queued"
    assert poll(api, world.miner).status_code == 204
