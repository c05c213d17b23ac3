"""Posting and editing reviews: 201 with the GPU's new aggregates, validation, the verified
reviewer rule, one review per client and GPU, and editing one's own review."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from tests.reviews.review_support import (
    average,
    dec,
    post_review,
    public_reviews,
    stored_aggregates,
    when,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import Market, release, review
from tests.support.responses import assert_error, ok

# --- 201 and the aggregates ---------------------------------------------------------------


def test_review_is_201_with_the_gpus_new_average_and_count(
    api: Api, market: Market, gpu: str
) -> None:
    key = market.used("c-1", gpu)
    response = post_review(api, key, gpu, 5, "Fast and stable.")
    body = ok(response, 201)
    assert body["review_id"].startswith("rev")
    assert body["gpu_id"] == gpu
    assert body["rating"] == 5
    assert body["comment"] == "Fast and stable."
    assert body["reviewer_id"] == "c-1"
    assert body["verified"] is True
    assert when(body["created_at"]) == api.clock.now()
    assert body["average_rating"] == "5.00"
    assert body["review_count"] == 1

    ratings = [5]
    for owner, rating in (("c-2", 2), ("c-3", 4), ("c-4", 4)):
        ratings.append(rating)
        saved = market.reviewed(owner, gpu, rating)
        assert dec(saved["average_rating"]) == average(ratings)
        assert saved["review_count"] == len(ratings)

    shown = details(api, gpu)
    assert dec(shown["average_rating"]) == average(ratings) == dec("3.75")
    assert shown["review_count"] == 4


def test_average_is_rounded_half_up_to_two_decimals(api: Api, market: Market, gpu: str) -> None:
    market.reviewed("c-1", gpu, 5)
    market.reviewed("c-2", gpu, 4)
    third = market.reviewed("c-3", gpu, 4)  # 13 / 3 = 4.333...
    assert third["average_rating"] == "4.33"
    fourth = market.reviewed("c-4", gpu, 5)  # 18 / 4 = 4.5
    assert fourth["average_rating"] == "4.50"
    fifth = market.reviewed("c-5", gpu, 3)  # 21 / 5 = 4.2
    assert fifth["average_rating"] == "4.20"
    sixth = market.reviewed("c-6", gpu, 5)  # 26 / 6 = 4.333...
    assert sixth["average_rating"] == "4.33"
    market.reviewed("c-7", gpu, 5)
    eighth = market.reviewed("c-8", gpu, 4)  # 35 / 8 = 4.375 -> 4.38
    assert eighth["average_rating"] == "4.38"
    assert details(api, gpu)["average_rating"] == "4.38"


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rating", [0, 6, -1, 100, "5", "five", 3.5, True, None, [5], {"stars": 5}], ids=repr
)
def test_rating_outside_1_to_5_or_not_an_integer_is_422(
    api: Api, market: Market, gpu: str, app: FastAPI, rating: Any
) -> None:
    key = market.used("c-1", gpu)
    assert_error(post_review(api, key, gpu, rating, "x"), 422, "validation_error")
    assert stored_aggregates(app, gpu) == ((0, 0), (0, 0))
    # The refusal left the client free to post a valid review.
    assert review(api, key, gpu, 3)["review_count"] == 1


def test_missing_rating_and_unknown_fields_are_422(api: Api, market: Market, gpu: str) -> None:
    key = market.used("c-1", gpu)
    assert_error(api.call("POST", f"/v1/marketplace/gpu/{gpu}/reviews", key, json={}), 422)
    assert_error(
        api.call(
            "POST",
            f"/v1/marketplace/gpu/{gpu}/reviews",
            key,
            json={"comment": "no rating"},
        ),
        422,
        "validation_error",
    )
    assert_error(post_review(api, key, gpu, 4, "x", stars=4), 422, "validation_error")
    assert_error(
        api.call(
            "POST",
            f"/v1/marketplace/gpu/{gpu}/reviews",
            key,
            content=b"rating=5",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        422,
    )
    assert details(api, gpu)["review_count"] == 0


def test_every_valid_rating_is_accepted(api: Api, market: Market, gpu: str) -> None:
    for rating in range(1, 6):
        saved = market.reviewed(f"c-{rating}", gpu, rating)
        assert saved["rating"] == rating
    body = public_reviews(api, gpu)
    assert body["distribution"] == {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1}
    assert body["average_rating"] == "3.00"


def test_null_or_absent_comment_is_accepted_and_stored_as_null(
    api: Api, market: Market, gpu: str
) -> None:
    key = market.used("c-1", gpu)
    explicit = ok(post_review(api, key, gpu, 4, None), 201)
    assert explicit["comment"] is None
    key2 = market.used("c-2", gpu)
    absent = ok(
        api.call("POST", f"/v1/marketplace/gpu/{gpu}/reviews", key2, json={"rating": 5}), 201
    )
    assert absent["comment"] is None
    listed = public_reviews(api, gpu)["reviews"]
    assert [r["comment"] for r in listed] == [None, None]


def test_comment_limit_is_2000_characters(api: Api, market: Market, gpu: str) -> None:
    key = market.used("c-1", gpu)
    assert_error(post_review(api, key, gpu, 4, "x" * 2001), 422, "validation_error")
    assert details(api, gpu)["review_count"] == 0
    saved = ok(post_review(api, key, gpu, 4, "y" * 2000), 201)
    assert saved["comment"] == "y" * 2000
    # Characters, not bytes.
    key2 = market.used("c-2", gpu)
    assert ok(post_review(api, key2, gpu, 4, "é" * 2000), 201)["comment"] == "é" * 2000


def test_empty_comment_is_kept_as_given(api: Api, market: Market, gpu: str) -> None:
    key = market.used("c-1", gpu)
    assert ok(post_review(api, key, gpu, 4, ""), 201)["comment"] == ""


def test_html_and_unicode_are_stored_verbatim(api: Api, market: Market, gpu: str) -> None:
    comment = (
        "<script>alert(\"x\")</script> <b>bold</b> &amp; & 'quotes' "
        "<img src=x onerror=alert(1)>\nline two \u00e9\u4e2d\U0001f680"
    )
    key = market.used("c-1", gpu)
    response = post_review(api, key, gpu, 2, comment)
    assert response.headers["content-type"].startswith("application/json")
    assert ok(response, 201)["comment"] == comment
    listed = api.call("GET", f"/v1/marketplace/gpu/{gpu}/reviews")
    assert listed.headers["content-type"].startswith("application/json")
    assert listed.json()["reviews"][0]["comment"] == comment


# --- who may review -----------------------------------------------------------------------


def test_client_without_a_booking_is_403_review_not_verified(
    api: Api, market: Market, gpu: str
) -> None:
    key = market.client("c-1")
    assert_error(post_review(api, key, gpu, 5, "never used it"), 403, "review_not_verified")
    # A booking of another GPU does not count either.
    other = market.gpu(name="RTX 4090", price_per_hour="0.5")
    market.used("c-1", other)
    assert_error(post_review(api, key, gpu, 5), 403, "review_not_verified")
    assert details(api, gpu)["review_count"] == 0
    assert public_reviews(api, gpu)["reviews"] == []


def test_future_reservation_counts_only_once_it_has_started(
    api: Api, market: Market, gpu: str
) -> None:
    key = market.client("c-1")
    start = api.clock.now() + timedelta(hours=2)
    booked = market.book("c-1", gpu, "1", start_time=start.isoformat())
    assert booked["status"] == "pending"
    assert_error(post_review(api, key, gpu, 5), 403, "review_not_verified")
    api.clock.advance(hours=1, minutes=59, seconds=59)
    assert_error(post_review(api, key, gpu, 5), 403, "review_not_verified")
    api.clock.advance(seconds=1)  # the reservation starts now
    assert review(api, key, gpu, 5)["review_count"] == 1


def test_cancelled_reservation_does_not_verify(api: Api, market: Market, gpu: str) -> None:
    key = market.client("c-1")
    start = api.clock.now() + timedelta(hours=1)
    booked = market.book("c-1", gpu, "1", start_time=start.isoformat())
    cancelled = api.call("POST", f"/v1/bookings/{booked['booking_id']}/release", key)
    assert ok(cancelled)["status"] == "cancelled"
    # Even once its window would have started and ended.
    api.clock.advance(hours=3)
    assert_error(post_review(api, key, gpu, 5), 403, "review_not_verified")


def test_a_reservation_preempted_before_it_began_does_not_verify(
    api: Api, market: Market, gpu: str
) -> None:
    """It ended, charged nothing, before its window opened: its client never used the GPU,
    however long ago that window began."""
    key = market.client("c-1")
    start = api.clock.now() + timedelta(hours=1)
    window = {"start_time": start.isoformat()}
    held = market.book("c-1", gpu, "1", rental_type="interruptible", bid_per_hour="0.4", **window)
    market.client("c-2")
    market.book("c-2", gpu, "3")  # on demand over its whole window: it ends at once
    ended = ok(api.call("GET", f"/v1/bookings/{held['booking_id']}", key))
    assert (ended["status"], ended["amount_charged"]) == ("preempted", "0.000000")
    api.pass_time(2 * 3600, market.miner_key)  # its window has begun and ended
    assert_error(post_review(api, key, gpu, 1, "never used it"), 403, "review_not_verified")


def test_started_booking_verifies_while_running_released_or_completed(
    api: Api, market: Market, gpu: str
) -> None:
    gpu2 = market.gpu(name="RTX 4090", price_per_hour="0.5")
    gpu3 = market.gpu(name="RTX 4090", price_per_hour="0.5")
    # Running now.
    running = market.client("c-run")
    market.book("c-run", gpu)
    assert review(api, running, gpu, 4)["review_count"] == 1
    # Started, then released early.
    released = market.client("c-rel")
    market.book("c-rel", gpu2)
    api.clock.advance(seconds=30)
    assert release(api, released, gpu2)["status"] == "released"
    assert review(api, released, gpu2, 3)["review_count"] == 1
    # Ran to the end.
    completed = market.client("c-done")
    market.book("c-done", gpu3, "0.01")
    api.clock.advance(seconds=36)
    assert review(api, completed, gpu3, 5)["review_count"] == 1


def test_only_client_keys_may_review(api: Api, market: Market, gpu: str) -> None:
    assert_error(post_review(api, market.miner_key, gpu, 5), 403, "wrong_role")
    assert_error(post_review(api, ADMIN_KEY, gpu, 5), 403, "wrong_role")
    assert_error(post_review(api, "", gpu, 5), 401, "authentication_required")
    assert_error(post_review(api, "not-a-key", gpu, 5), 401, "invalid_api_key")
    assert details(api, gpu)["review_count"] == 0


def test_unknown_gpu_is_404(api: Api, market: Market) -> None:
    key = market.client("c-1")
    assert_error(post_review(api, key, "gpu_nope", 5), 404, "gpu_not_found")


# --- one review per client and GPU --------------------------------------------------------


def test_second_review_is_409_and_leaves_aggregates_alone(
    api: Api, market: Market, gpu: str, app: FastAPI
) -> None:
    key = market.used("c-1", gpu)
    first = review(api, key, gpu, 5, "first")
    # A second booking does not entitle a second review.
    market.used("c-1", gpu)
    second = assert_error(post_review(api, key, gpu, 1, "second"), 409, "review_exists")
    # The answer names the review to edit, and how.
    assert f"PUT /v1/marketplace/reviews/{first['review_id']}" in second["detail"]
    # Nor does another key of the same client.
    other_key = api.key("client", "c-1")
    assert_error(post_review(api, other_key, gpu, 1), 409, "review_exists")
    body = public_reviews(api, gpu)
    assert [r["review_id"] for r in body["reviews"]] == [first["review_id"]]
    assert body["average_rating"] == "5.00" and body["review_count"] == 1
    kept, recount = stored_aggregates(app, gpu)
    assert kept == recount == (5, 1)


def test_one_client_may_review_several_gpus(api: Api, market: Market, gpu: str) -> None:
    other = market.gpu(name="A100", price_per_hour="2")
    key = market.used("c-1", gpu)
    market.used("c-1", other)
    assert review(api, key, gpu, 5)["review_count"] == 1
    assert review(api, key, other, 2)["review_count"] == 1
    assert details(api, gpu)["average_rating"] == "5.00"
    assert details(api, other)["average_rating"] == "2.00"


# --- editing ------------------------------------------------------------------------------


def _put(api: Api, key: str, review_id: str, body: Any) -> Any:
    return api.call("PUT", f"/v1/marketplace/reviews/{review_id}", key, json=body)


def test_author_edits_own_review_and_aggregates_follow(
    api: Api, market: Market, gpu: str, app: FastAPI
) -> None:
    key = market.used("c-1", gpu)
    first = review(api, key, gpu, 5, "great")
    market.reviewed("c-2", gpu, 3)
    api.clock.advance(minutes=5)
    edited = ok(_put(api, key, first["review_id"], {"rating": 1, "comment": "died on me"}))
    assert edited["review_id"] == first["review_id"]
    assert edited["rating"] == 1 and edited["comment"] == "died on me"
    assert edited["average_rating"] == "2.00" and edited["review_count"] == 2
    assert edited["created_at"] == first["created_at"]
    assert when(edited["updated_at"]) == api.clock.now() > when(first["updated_at"])

    shown = details(api, gpu)
    assert shown["average_rating"] == "2.00" and shown["review_count"] == 2
    listed = public_reviews(api, gpu)
    assert listed["distribution"] == {"1": 1, "2": 0, "3": 1, "4": 0, "5": 0}
    mine = next(r for r in listed["reviews"] if r["review_id"] == first["review_id"])
    assert mine["rating"] == 1 and mine["comment"] == "died on me"
    kept, recount = stored_aggregates(app, gpu)
    assert kept == recount == (4, 2)

    # A PUT replaces the review: no comment means the comment is cleared.
    cleared = ok(_put(api, key, first["review_id"], {"rating": 4}))
    assert cleared["comment"] is None and cleared["average_rating"] == "3.50"
    # Editing to the same rating changes nothing.
    same = ok(_put(api, key, first["review_id"], {"rating": 4, "comment": None}))
    assert same["average_rating"] == "3.50" and same["review_count"] == 2


def test_others_may_not_edit_a_review(api: Api, market: Market, gpu: str) -> None:
    key = market.used("c-1", gpu)
    first = review(api, key, gpu, 5, "mine")
    other = market.used("c-2", gpu)
    path_id = first["review_id"]
    assert_error(_put(api, other, path_id, {"rating": 1}), 403, "not_review_author")
    assert_error(_put(api, market.miner_key, path_id, {"rating": 1}), 403, "wrong_role")
    assert_error(_put(api, ADMIN_KEY, path_id, {"rating": 1}), 403, "wrong_role")
    assert_error(_put(api, "", path_id, {"rating": 1}), 401, "authentication_required")
    assert_error(_put(api, key, "rev_nope", {"rating": 1}), 404, "review_not_found")
    for bad in (0, 6, "5", 2.5):
        assert_error(_put(api, key, path_id, {"rating": bad}), 422, "validation_error")
    assert_error(_put(api, key, path_id, {"rating": 4, "comment": "z" * 2001}), 422)
    body = public_reviews(api, gpu)
    assert body["reviews"][0]["rating"] == 5 and body["reviews"][0]["comment"] == "mine"
    assert body["average_rating"] == "5.00"


def test_a_whole_rating_written_as_a_decimal_is_a_rating(
    api: Api, market: Market, gpu: str
) -> None:
    """3.0 is an integer to JSON Schema, and so to the OpenAPI document that says integer."""
    key = market.used("c-1", gpu)
    posted = post_review(api, key, gpu, 3.0, "fine")
    assert posted.status_code == 201, posted.text
    assert posted.json()["rating"] == 3
