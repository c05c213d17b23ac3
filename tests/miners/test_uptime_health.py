"""Health you can see: each GPU's latest heartbeat figures and when they came, in details and
the list and /metrics; uptime over 24 hours and 7 days from the miner's heartbeats, refreshed
by the sweeper, shown and sortable; and the sweeper's other care of miners (GPUs of a miner
that left delisted once free, old presence stretches dropped)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.jobs.slice_support import sweep
from tests.support.api import Api
from tests.support.gpus import details, list_gpus
from tests.support.market import booked, deposit

TIMEOUT = 90  # the default heartbeat timeout, which the tests' settings keep
HOUR = 3600


def register(api: Api, miner_id: str, **spec: Any) -> tuple[str, str]:
    """A miner with one GPU in slot "0": (its key, the GPU's id)."""
    key = api.key("miner", miner_id)
    gpu = {"slot": "0", "model": "RTX 4090", "memory_gb": 24, "price_per_hour": "0.5"} | spec
    response = api.call("POST", "/v1/miners/register", key, json={"gpus": [gpu]})
    assert response.status_code in (200, 201), response.text
    [registered] = response.json()["gpus"]
    return key, str(registered["gpu_id"])


def pct(online: float, window: float) -> str:
    """The figure the API shows: basis points, truncated, as a percentage."""
    bp = min(10_000, int(online * 10_000 // window))
    return f"{bp // 100}.{bp % 100:02d}"


def test_uptime_is_the_share_of_each_window_the_miner_was_heard(api: Api) -> None:
    key, gpu_id = register(api, "flaky")
    api.pass_time(HOUR, key)  # an hour of heartbeats
    api.clock.advance(seconds=30 * HOUR)  # thirty hours of silence
    api.call("POST", "/v1/miners/heartbeat", key)  # back
    api.pass_time(HOUR, key)  # and an hour more
    sweep(api)

    gpu = details(api, gpu_id)
    # 24 hours: only the last hour. 7 days: since it registered 32 hours ago, both hours and
    # the heartbeat timeout after the first stretch's last heartbeat.
    assert gpu["uptime_24h_pct"] == pct(HOUR, 24 * HOUR)
    assert gpu["uptime_7d_pct"] == pct(2 * HOUR + TIMEOUT, 32 * HOUR)
    listed = {g["gpu_id"]: g for g in list_gpus(api)}
    assert listed[gpu_id]["uptime_7d_pct"] == gpu["uptime_7d_pct"]


def test_a_host_that_never_missed_a_heartbeat_has_full_uptime(api: Api) -> None:
    key, gpu_id = register(api, "steady")
    # Online all the time since it registered, before the sweeper has looked too.
    before = details(api, gpu_id)
    assert (before["uptime_24h_pct"], before["uptime_7d_pct"]) == ("100.00", "100.00")
    api.pass_time(2 * HOUR, key)
    sweep(api)
    gpu = details(api, gpu_id)
    assert (gpu["uptime_24h_pct"], gpu["uptime_7d_pct"]) == ("100.00", "100.00")


def test_the_list_sorts_by_uptime_most_reliable_first(api: Api) -> None:
    steady_key, steady = register(api, "steady", price_per_hour="0.9")
    flaky_key, flaky = register(api, "flaky", price_per_hour="0.1")
    late_key, late = register(api, "late", price_per_hour="0.5")
    api.pass_time(HOUR, steady_key, late_key)  # flaky silent
    api.pass_time(HOUR / 2, steady_key)  # late silent too
    api.pass_time(HOUR / 2, steady_key, late_key, flaky_key)
    sweep(api)
    # Everyone online again for the list (an offline GPU still lists; the sort is the point).
    api.pass_time(60, steady_key, flaky_key, late_key)
    ranked = [g["gpu_id"] for g in list_gpus(api, sort="uptime")]
    assert ranked == [steady, late, flaky]
    # The cursor pages through the same order.
    first = api.call("GET", "/v1/marketplace/gpu/list", params={"sort": "uptime", "limit": 2})
    cursor = first.headers["X-Next-Cursor"]
    rest = api.call("GET", "/v1/marketplace/gpu/list", params={"sort": "uptime", "cursor": cursor})
    assert [g["gpu_id"] for g in first.json() + rest.json()] == ranked


def test_heartbeat_figures_show_in_details_and_the_list_with_their_time(api: Api) -> None:
    key, gpu_id = register(api, "hot")
    assert details(api, gpu_id)["health"] == {} and details(api, gpu_id)["health_at"] is None
    api.clock.advance(seconds=10)
    beat = {
        "gpus": [
            {
                "slot": "0",
                "utilization_pct": 87.5,
                "memory_used_gb": 20.5,
                "memory_total_gb": 24,
                "temperature_c": 71,
            }
        ]
    }
    response = api.call("POST", "/v1/miners/heartbeat", key, json=beat)
    assert response.status_code == 200, response.text
    gpu = details(api, gpu_id)
    assert gpu["health"] == {
        "utilization_pct": 87.5,
        "memory_used_gb": 20.5,
        "memory_total_gb": 24,
        "temperature_c": 71,
    }
    assert gpu["health_at"] == gpu["last_heartbeat"]
    assert list_gpus(api)[0]["health"] == gpu["health"]


def _metrics(api: Api) -> list[Any]:
    response = api.call("GET", "/metrics")
    assert response.status_code == 200, response.text
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def _gauge(samples: list[Any], name: str, **labels: str) -> list[float]:
    return [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]


def test_metrics_carry_each_gpus_fresh_figures_and_uptime(api: Api) -> None:
    key, gpu_id = register(api, "watched")
    slot_beat = {"gpus": [{"slot": "0", "utilization_pct": 50, "memory_used_gb": 12}]}
    assert api.call("POST", "/v1/miners/heartbeat", key, json=slot_beat).status_code == 200
    api.pass_time(HOUR, key)
    assert api.call("POST", "/v1/miners/heartbeat", key, json=slot_beat).status_code == 200
    sweep(api)

    samples = _metrics(api)
    labels = {"gpu_id": gpu_id, "miner_id": "watched", "model": "RTX 4090"}
    assert _gauge(samples, "aitbc_gpu_utilization_ratio", **labels) == [0.5]
    assert _gauge(samples, "aitbc_gpu_memory_used_bytes", **labels) == [12 * 1024**3]
    assert _gauge(samples, "aitbc_gpu_temperature_celsius", **labels) == []  # not reported
    assert _gauge(samples, "aitbc_gpu_uptime_ratio", window="24h", **labels) == [1.0]
    assert _gauge(samples, "aitbc_gpu_uptime_ratio", window="7d", **labels) == [1.0]

    # Figures older than the heartbeat timeout are not the GPU's state any more.
    api.clock.advance(seconds=TIMEOUT + 1)
    samples = _metrics(api)
    assert _gauge(samples, "aitbc_gpu_utilization_ratio", **labels) == []
    assert _gauge(samples, "aitbc_gpu_uptime_ratio", window="24h", **labels) == [1.0]


def test_a_miner_that_left_has_its_gpu_delisted_once_its_booking_ends(api: Api) -> None:
    key, gpu_id = register(api, "leaving")
    client = api.key("client", "renter")
    deposit(api, "renter", "10")
    booked(api, client, gpu_id, hours=1)
    gone = api.call("DELETE", "/v1/miners/leaving", key)
    assert gone.status_code == 200, gone.text
    sweep(api)
    assert details(api, gpu_id)["status"] != "delisted"  # its booking is still open
    api.clock.advance(seconds=2 * HOUR)
    sweep(api)  # the booking ends (interrupted: the miner went silent), then the GPU goes
    assert details(api, gpu_id)["status"] == "delisted"


def test_presence_stretches_older_than_the_longest_window_are_dropped(
    api: Api, database_url: str
) -> None:
    key, _ = register(api, "old-timer")
    api.pass_time(120, key)
    api.clock.advance(seconds=9 * 24 * HOUR)  # silent for nine days
    api.call("POST", "/v1/miners/heartbeat", key)
    sweep(api)
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            ended = conn.execute(
                text("SELECT count(*) FROM miner_presence WHERE miner_id = 'old-timer'")
            ).scalar()
    finally:
        engine.dispose()
    assert ended == 1  # only the stretch that began with today's heartbeat
