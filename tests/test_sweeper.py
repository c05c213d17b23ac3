import pytest
from fastapi import FastAPI

import aitbc.sweeper as sweeper_module
from tests.accounts.ledger_invariants import assert_ledger_invariants
from tests.support.api import ADMIN_KEY, Api
from tests.support.market import advance


def test_a_sweep_counts_every_booking_it_settles_even_two_on_one_gpu(
    api: Api, app: FastAPI
) -> None:
    miner = api.key("miner", "m1")
    client = api.key("client", "c1")
    gpu = api.register_gpu(miner, price_per_hour="3.6")
    api.call(
        "POST",
        "/v1/admin/accounts/c1/deposit",
        ADMIN_KEY,
        json={"amount": "10"},
        params={"create": "true"},
    )
    now = api.call("POST", f"/v1/marketplace/gpu/{gpu}/book", client, json={"duration_hours": 1})
    assert now.status_code == 201, now.text
    later = api.call(
        "POST",
        f"/v1/marketplace/gpu/{gpu}/book",
        client,
        json={"duration_hours": 1, "start_time": now.json()["end_time"]},
    )
    assert later.status_code == 201, later.text

    advance(api, 3 * 3600, miner)
    assert app.state.sweeper.run_once() == 2
    assert app.state.sweeper.run_once() == 0
    statuses = {
        api.call("GET", f"/v1/bookings/{b.json()['booking_id']}", client).json()["status"]
        for b in (now, later)
    }
    assert statuses == {"completed"}


def test_a_sweep_settles_more_bookings_than_a_batch_each_exactly_once(
    api: Api, app: FastAPI, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of three: seven bookings of two clients on seven GPUs of two miners fall due
    together; one sweep settles all of them, in three transactions, each once."""
    monkeypatch.setattr(sweeper_module, "SETTLE_BATCH", 3)
    miners = [api.key("miner", f"m{i}") for i in (1, 2)]
    clients = [api.key("client", f"c{i}") for i in (1, 2)]
    for owner in ("c1", "c2"):
        path = f"/v1/admin/accounts/{owner}/deposit"
        funded = api.call(
            "POST", path, ADMIN_KEY, json={"amount": "100"}, params={"create": "true"}
        )
        assert funded.status_code == 201, funded.text
    booked = []
    for i in range(7):
        gpu = api.register_gpu(miners[i % 2], price_per_hour="1.2")
        made = api.call(
            "POST", f"/v1/marketplace/gpu/{gpu}/book", clients[i % 2], json={"duration_hours": 0.5}
        )
        assert made.status_code == 201, made.text
        booked.append(made.json()["booking_id"])

    advance(api, 3600, *miners)
    assert app.state.sweeper.run_once() == 7
    assert app.state.sweeper.run_once() == 0

    figures = assert_ledger_invariants(database_url)
    assert figures.transactions["booking_completed"] == 7
    assert figures.open_bookings == 0
    assert figures.balance("m1") == 4 * 600_000 and figures.balance("m2") == 3 * 600_000
    assert figures.balance("c1") == 100_000_000 - 4 * 600_000
    assert figures.balance("c1", "escrow") == figures.balance("c2", "escrow") == 0
