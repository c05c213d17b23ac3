from conftest import ADMIN_KEY, Api
from fastapi import FastAPI


def test_a_sweep_counts_every_booking_it_settles_even_two_on_one_gpu(
    api: Api, app: FastAPI
) -> None:
    miner = api.key("miner", "m1")
    client = api.key("client", "c1")
    gpu = api.register_gpu(miner, price_per_hour="3.6")
    api.call("POST", "/v1/admin/accounts/c1/deposit", ADMIN_KEY, json={"amount": "10"})
    now = api.call("POST", f"/v1/marketplace/gpu/{gpu}/book", client, json={"duration_hours": 1})
    assert now.status_code == 201, now.text
    later = api.call(
        "POST",
        f"/v1/marketplace/gpu/{gpu}/book",
        client,
        json={"duration_hours": 1, "start_time": now.json()["end_time"]},
    )
    assert later.status_code == 201, later.text

    api.clock.advance(hours=3)
    assert app.state.sweeper.run_once() == 2
    assert app.state.sweeper.run_once() == 0
    statuses = {
        api.call("GET", f"/v1/bookings/{b.json()['booking_id']}", client).json()["status"]
        for b in (now, later)
    }
    assert statuses == {"completed"}
