"""Reading reviews: the public list with distribution, sorting and paging; the rating in GPU
list and details and ``sort=rating``; the rating history by day and week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tests.reviews.review_support import average, dec, public_reviews, when
from tests.support.api import Api
from tests.support.gpus import details
from tests.support.market import Market
from tests.support.responses import assert_error, ok

REVIEW_FIELDS = {
    "review_id",
    "gpu_id",
    "rating",
    "comment",
    "reviewer_id",
    "verified",
    "created_at",
    "updated_at",
}


def _ids(body: dict[str, Any]) -> list[str]:
    return [r["reviewer_id"] for r in body["reviews"]]


# --- the public list ----------------------------------------------------------------------


def test_gpu_without_reviews(api: Api, gpu: str) -> None:
    body = public_reviews(api, gpu)
    assert body == {
        "gpu_id": gpu,
        "average_rating": None,
        "review_count": 0,
        "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0},
        "reviews": [],
    }
    shown = details(api, gpu)
    assert shown["average_rating"] is None and shown["review_count"] == 0


def test_public_list_has_aggregates_distribution_and_review_fields(
    api: Api, market: Market, gpu: str
) -> None:
    for owner, rating in (("c-1", 5), ("c-2", 5), ("c-3", 4), ("c-4", 1)):
        market.reviewed(owner, gpu, rating, f"from {owner}")
    # Anonymous (empty key) and no key at all both read it.
    body = public_reviews(api, gpu)
    no_header = api.client.get(f"/v1/marketplace/gpu/{gpu}/reviews")
    assert no_header.status_code == 200 and no_header.json() == body
    assert body["gpu_id"] == gpu
    assert body["average_rating"] == "3.75" and body["review_count"] == 4
    assert body["distribution"] == {"1": 1, "2": 0, "3": 0, "4": 1, "5": 2}
    assert len(body["reviews"]) == 4
    for item in body["reviews"]:
        assert set(item) == REVIEW_FIELDS
        assert item["gpu_id"] == gpu
        assert item["verified"] is True
        assert item["comment"] == f"from {item['reviewer_id']}"
        when(item["created_at"])


@pytest.fixture
def five_reviews(api: Api, market: Market, gpu: str) -> list[str]:
    """c-1..c-5 reviewed one minute apart with ratings 3, 5, 1, 5, 2."""
    for owner, rating in (("c-1", 3), ("c-2", 5), ("c-3", 1), ("c-4", 5), ("c-5", 2)):
        market.reviewed(owner, gpu, rating)
    return ["c-1", "c-2", "c-3", "c-4", "c-5"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("newest", ["c-5", "c-4", "c-3", "c-2", "c-1"]),
        ("oldest", ["c-1", "c-2", "c-3", "c-4", "c-5"]),
        ("highest", ["c-4", "c-2", "c-1", "c-5", "c-3"]),
        ("lowest", ["c-3", "c-5", "c-1", "c-4", "c-2"]),
    ],
)
def test_sort_orders(
    api: Api, gpu: str, five_reviews: list[str], sort: str, expected: list[str]
) -> None:
    assert _ids(public_reviews(api, gpu, sort=sort)) == expected


def test_default_sort_is_newest(api: Api, gpu: str, five_reviews: list[str]) -> None:
    assert _ids(public_reviews(api, gpu)) == ["c-5", "c-4", "c-3", "c-2", "c-1"]


def test_limit_and_offset_page_through_without_touching_aggregates(
    api: Api, gpu: str, five_reviews: list[str]
) -> None:
    first = public_reviews(api, gpu, limit=2)
    second = public_reviews(api, gpu, limit=2, offset=2)
    third = public_reviews(api, gpu, limit=2, offset=4)
    beyond = public_reviews(api, gpu, limit=2, offset=10)
    assert _ids(first) == ["c-5", "c-4"]
    assert _ids(second) == ["c-3", "c-2"]
    assert _ids(third) == ["c-1"]
    assert _ids(beyond) == []
    for page in (first, second, third, beyond):
        assert page["review_count"] == 5 and page["average_rating"] == "3.20"
        assert page["distribution"] == {"1": 1, "2": 1, "3": 1, "4": 0, "5": 2}
    assert _ids(public_reviews(api, gpu, sort="highest", limit=3, offset=1)) == [
        "c-2",
        "c-1",
        "c-5",
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "best"},
        {"sort": "rating"},
        {"limit": 0},
        {"limit": 501},
        {"limit": "ten"},
        {"offset": -1},
    ],
    ids=repr,
)
def test_bad_list_parameters_are_422(api: Api, gpu: str, params: dict[str, Any]) -> None:
    response = api.call("GET", f"/v1/marketplace/gpu/{gpu}/reviews", params=params)
    assert_error(response, 422, "validation_error")


def test_unknown_gpu_is_404_everywhere(api: Api) -> None:
    assert_error(api.call("GET", "/v1/marketplace/gpu/gpu_nope/reviews"), 404, "gpu_not_found")
    assert_error(
        api.call("GET", "/v1/marketplace/gpu/gpu_nope/rating-history"), 404, "gpu_not_found"
    )
    assert_error(
        api.call("GET", "/v1/marketplace/gpu/gpu_nope/rating-history", params={"bucket": "week"}),
        404,
        "gpu_not_found",
    )


# --- the rating in GPU list and details ---------------------------------------------------


def _listed(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = api.call("GET", "/v1/marketplace/gpu/list", params={"limit": 500, **params})
    body = ok(response)
    assert isinstance(body, list)
    return body


def test_list_and_details_show_rating_and_sort_rating_orders_by_it(
    api: Api, market: Market
) -> None:
    a = market.gpu(name="RTX 4090", price_per_hour="0.1")  # 5, 4 -> 4.50 (2)
    b = market.gpu(name="RTX 4090", price_per_hour="0.2")  # 5 -> 5.00 (1)
    c = market.gpu(name="RTX 4090", price_per_hour="0.3")  # no reviews
    d = market.gpu(name="RTX 4090", price_per_hour="0.4")  # 4, 5, 4, 5 -> 4.50 (4)
    e = market.gpu(name="RTX 4090", price_per_hour="0.5")  # 2 -> 2.00 (1)
    f = market.gpu(name="RTX 4090", price_per_hour="0.6")  # 3, 4 -> 3.50 (2)
    plan = {
        a: [5, 4],
        b: [5],
        d: [4, 5, 4, 5],
        e: [2],
        f: [3, 4],
    }
    for gpu_id, ratings in plan.items():
        for n, rating in enumerate(ratings):
            market.reviewed(f"c-{n}", gpu_id, rating)
    market.beat()

    expected = {gpu_id: (average(r), len(r)) for gpu_id, r in plan.items()} | {c: (None, 0)}
    listed = {g["gpu_id"]: g for g in _listed(api)}
    for gpu_id, (avg, count) in expected.items():
        assert (dec(listed[gpu_id]["average_rating"]), listed[gpu_id]["review_count"]) == (
            avg,
            count,
        ), gpu_id
        shown = details(api, gpu_id)
        assert (dec(shown["average_rating"]), shown["review_count"]) == (avg, count), gpu_id
    assert listed[a]["average_rating"] == "4.50"

    # Highest average first; equal averages: more reviews first; unrated last.
    assert [g["gpu_id"] for g in _listed(api, sort="rating")] == [b, d, a, f, e, c]
    # Paging through the rating order.
    assert [g["gpu_id"] for g in _listed(api, sort="rating", limit=2, offset=2)] == [a, f]
    # Other sorts are untouched by ratings.
    assert [g["gpu_id"] for g in _listed(api, sort="price")] == [a, b, c, d, e, f]


# --- the rating history -------------------------------------------------------------------


def _at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2030, 1, day, hour, minute, tzinfo=UTC)


def _history(api: Api, gpu_id: str, **params: Any) -> list[dict[str, Any]]:
    body = ok(api.call("GET", f"/v1/marketplace/gpu/{gpu_id}/rating-history", params=params))
    assert isinstance(body, list)
    return body


def _points(history: list[dict[str, Any]]) -> list[tuple[datetime, Any, int, int, Any]]:
    return [
        (
            when(p["period_start"]),
            dec(p["average_rating"]),
            p["review_count"],
            p["new_reviews"],
            dec(p["period_average"]),
        )
        for p in history
    ]


@pytest.fixture
def history_gpu(api: Api, market: Market, gpu: str) -> dict[str, str]:
    """Reviews written across two weeks (2030-01-01 is a Tuesday; weeks start on Monday).
    Returns each reviewer's review id."""
    plan = [
        ("c-1", _at(1, 0, 10), 5),
        ("c-2", _at(1, 22, 0), 3),
        ("c-3", _at(2, 12, 0), 4),
        ("c-4", _at(4, 8, 0), 1),  # nothing on the 3rd
        ("c-5", _at(7, 9, 0), 5),  # Monday: a new week
        ("c-6", _at(8, 23, 0), 2),
    ]
    ids = {}
    for owner, moment, rating in plan:
        api.clock.set(moment)
        saved = market.reviewed(owner, gpu, rating)  # one minute after `moment`
        ids[owner] = saved["review_id"]
    return ids


def test_rating_history_by_day_is_a_running_average(
    api: Api, gpu: str, history_gpu: dict[str, str]
) -> None:
    d = Decimal
    assert _points(_history(api, gpu)) == [
        (_at(1), d("4.00"), 2, 2, d("4.00")),
        (_at(2), d("4.00"), 3, 1, d("4.00")),
        (_at(4), d("3.25"), 4, 1, d("1.00")),
        (_at(7), d("3.60"), 5, 1, d("5.00")),
        (_at(8), d("3.33"), 6, 1, d("2.00")),
    ]
    assert _history(api, gpu, bucket="day") == _history(api, gpu)


def test_rating_history_by_week(api: Api, gpu: str, history_gpu: dict[str, str]) -> None:
    d = Decimal
    monday_before = datetime(2029, 12, 31, tzinfo=UTC)
    assert _points(_history(api, gpu, bucket="week")) == [
        (monday_before, d("3.25"), 4, 4, d("3.25")),
        (_at(7), d("3.33"), 6, 2, d("3.50")),
    ]


def test_rating_history_since_keeps_earlier_reviews_in_the_running_average(
    api: Api, gpu: str, history_gpu: dict[str, str]
) -> None:
    d = Decimal
    since = _at(4).isoformat()
    assert _points(_history(api, gpu, since=since)) == [
        (_at(4), d("3.25"), 4, 1, d("1.00")),
        (_at(7), d("3.60"), 5, 1, d("5.00")),
        (_at(8), d("3.33"), 6, 1, d("2.00")),
    ]
    # A since in the middle of a day includes that whole day.
    mid_day = _history(api, gpu, since=_at(2, 18).isoformat())
    assert when(mid_day[0]["period_start"]) == _at(2)
    # By week: the week holding `since` is included.
    weekly = _points(_history(api, gpu, bucket="week", since=_at(3).isoformat()))
    assert [p[0] for p in weekly] == [datetime(2029, 12, 31, tzinfo=UTC), _at(7)]
    assert _history(api, gpu, since=_at(20).isoformat()) == []
    # The same moment written in another zone: its day in UTC, not in that zone.
    for zone in (5, -5):
        there = timezone(timedelta(hours=zone))
        written = _at(2, 18).astimezone(there)
        assert _history(api, gpu, since=written.isoformat()) == mid_day


def test_rating_history_leaves_out_hidden_reviews(
    api: Api, gpu: str, history_gpu: dict[str, str], admin_key: str
) -> None:
    d = Decimal
    hidden = api.call("POST", f"/v1/admin/reviews/{history_gpu['c-4']}/hide", admin_key)
    assert hidden.status_code == 200, hidden.text
    assert _points(_history(api, gpu)) == [
        (_at(1), d("4.00"), 2, 2, d("4.00")),
        (_at(2), d("4.00"), 3, 1, d("4.00")),
        (_at(7), d("4.25"), 4, 1, d("5.00")),
        (_at(8), d("3.80"), 5, 1, d("2.00")),
    ]


def test_rating_history_uses_edited_ratings(
    api: Api, market: Market, gpu: str, history_gpu: dict[str, str]
) -> None:
    key = market.clients["c-1"]
    edited = api.call(
        "PUT", f"/v1/marketplace/reviews/{history_gpu['c-1']}", key, json={"rating": 1}
    )
    assert edited.status_code == 200, edited.text
    first = _points(_history(api, gpu))[0]
    assert first == (_at(1), Decimal("2.00"), 2, 2, Decimal("2.00"))


def test_rating_history_empty_and_bad_parameters(api: Api, gpu: str) -> None:
    assert _history(api, gpu) == []
    assert _history(api, gpu, bucket="week") == []
    path = f"/v1/marketplace/gpu/{gpu}/rating-history"
    assert_error(api.call("GET", path, params={"bucket": "month"}), 422, "validation_error")
    assert_error(api.call("GET", path, params={"since": "2030-01-01T00:00:00"}), 422)  # no zone
    assert_error(api.call("GET", path, params={"since": "yesterday"}), 422)
