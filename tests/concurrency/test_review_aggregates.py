"""Review aggregates under concurrency: many clients review one GPU at the same moment (and
edits and moderation run alongside), over real HTTP to a live server, one connection per
thread. Afterwards the GPU's ``rating_sum`` and ``review_count`` equal a recomputation from
the stored visible reviews, and the API shows the same figures."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI

from tests.reviews.review_support import average, public_reviews, stored_aggregates
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import Market
from tests.support.together import each_with_a_client

CLIENTS = 20


def _post(key: str, gpu: str, rating: int) -> Callable[[httpx.Client], httpx.Response]:
    def call(client: httpx.Client) -> httpx.Response:
        return client.post(
            f"/v1/marketplace/gpu/{gpu}/reviews",
            headers={"X-Api-Key": key},
            json={"rating": rating, "comment": f"rated {rating}"},
        )

    return call


def _assert_consistent(api: Api, app: FastAPI, gpu: str, ratings: list[int]) -> None:
    kept, recount = stored_aggregates(app, gpu)
    assert kept == recount == (sum(ratings), len(ratings))
    shown = details(api, gpu)
    assert shown["review_count"] == len(ratings)
    assert (None if shown["average_rating"] is None else Decimal(shown["average_rating"])) == (
        average(ratings)
    )
    listing = public_reviews(api, gpu, limit=500)
    assert listing["review_count"] == len(ratings) == len(listing["reviews"])
    assert sorted(r["rating"] for r in listing["reviews"]) == sorted(ratings)
    assert sum(listing["distribution"].values()) == len(ratings)


def test_simultaneous_reviews_keep_exact_aggregates(
    api: Api, app: FastAPI, market: Market, live_server: str
) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="0.5")
    keys = [market.used(f"c-{n}", gpu, seconds=5) for n in range(CLIENTS)]
    ratings = [n % 5 + 1 for n in range(CLIENTS)]

    responses = each_with_a_client(
        live_server, [_post(k, gpu, r) for k, r in zip(keys, ratings, strict=True)]
    )
    for response in responses:
        assert isinstance(response, httpx.Response), response
        assert response.status_code == 201, response.text
    assert sorted(r.json()["review_count"] for r in responses) == list(range(1, CLIENTS + 1))
    _assert_consistent(api, app, gpu, ratings)


def test_one_client_posting_at_once_gets_exactly_one_review(
    api: Api, app: FastAPI, market: Market, live_server: str
) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="0.5")
    key = market.used("c-1", gpu)
    responses = each_with_a_client(live_server, [_post(key, gpu, 4) for _ in range(10)])
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 9, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"] == "review_exists"
    _assert_consistent(api, app, gpu, [4])


def test_reviews_edits_and_moderation_at_once_keep_exact_aggregates(
    api: Api, app: FastAPI, market: Market, live_server: str
) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="0.5")
    existing = {}
    for n in range(10):
        saved = market.reviewed(f"old-{n}", gpu, n % 5 + 1)
        existing[n] = saved["review_id"]
    new_keys = [market.used(f"new-{n}", gpu, seconds=5) for n in range(10)]

    calls: list[Callable[[httpx.Client], Any]] = []
    final: dict[str, int] = {}
    hidden: set[str] = set()
    for n, key in enumerate(new_keys):
        calls.append(_post(key, gpu, 5 - n % 5))
    for n in range(10):
        rid, new_rating = existing[n], (n * 3) % 5 + 1
        final[rid] = new_rating

        def edit(client: httpx.Client, rid: str = rid, rating: int = new_rating, n: int = n) -> Any:
            return client.put(
                f"/v1/marketplace/reviews/{rid}",
                headers={"X-Api-Key": market.clients[f"old-{n}"]},
                json={"rating": rating, "comment": "edited"},
            )

        calls.append(edit)
    for n in range(0, 10, 2):  # hide every other old review while it is being edited
        rid = existing[n]
        hidden.add(rid)

        def hide(client: httpx.Client, rid: str = rid) -> Any:
            return client.post(f"/v1/admin/reviews/{rid}/hide", headers={"X-Api-Key": ADMIN_KEY})

        calls.append(hide)
    for n in (1, 3):  # hide and restore at once: ends visible either way
        rid = existing[n]

        def hide_then_restore(client: httpx.Client, rid: str = rid) -> Any:
            headers = {"X-Api-Key": ADMIN_KEY}
            first = client.post(f"/v1/admin/reviews/{rid}/hide", headers=headers)
            second = client.post(f"/v1/admin/reviews/{rid}/restore", headers=headers)
            return first if first.status_code != 200 else second

        calls.append(hide_then_restore)

    responses = each_with_a_client(live_server, calls)
    for response in responses:
        assert isinstance(response, httpx.Response), response
        assert response.status_code in (200, 201), response.text

    visible = [r for rid, r in final.items() if rid not in hidden]
    visible += [5 - n % 5 for n in range(10)]
    _assert_consistent(api, app, gpu, visible)

    # Restoring everything brings back exactly the edited ratings.
    for rid in hidden:
        assert api.call("POST", f"/v1/admin/reviews/{rid}/restore", ADMIN_KEY).status_code == 200
    _assert_consistent(api, app, gpu, [*final.values(), *(5 - n % 5 for n in range(10))])
