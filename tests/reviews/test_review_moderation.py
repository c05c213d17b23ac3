"""Moderation: anyone with a key flags a review once; an admin lists flagged reviews and hides
or restores one; a hidden review leaves the public list and every aggregate, and comes back
with them when restored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from tests.reviews.review_support import public_reviews, stored_aggregates
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import Market
from tests.support.responses import assert_error, ok


def _flag(api: Api, key: str, review_id: str, reason: Any = "spam") -> Any:
    return api.call(
        "POST", f"/v1/marketplace/reviews/{review_id}/flag", key, json={"reason": reason}
    )


def _flagged(api: Api, key: str = ADMIN_KEY, **params: Any) -> list[dict[str, Any]]:
    body = ok(api.call("GET", "/v1/admin/reviews/flagged", key, params=params))
    assert isinstance(body, list)
    return body


def _hide(api: Api, review_id: str, key: str = ADMIN_KEY) -> Any:
    return api.call("POST", f"/v1/admin/reviews/{review_id}/hide", key)


def _restore(api: Api, review_id: str, key: str = ADMIN_KEY) -> Any:
    return api.call("POST", f"/v1/admin/reviews/{review_id}/restore", key)


def _state(api: Api, app: FastAPI, gpu: str) -> dict[str, Any]:
    """What the public sees about the GPU's reviews, plus the stored aggregates."""
    listing = public_reviews(api, gpu, limit=100)
    shown = details(api, gpu)
    in_list = next(
        g
        for g in ok(api.call("GET", "/v1/marketplace/gpu/list", params={"limit": 500}))
        if g["gpu_id"] == gpu
    )
    kept, recount = stored_aggregates(app, gpu)
    assert kept == recount
    assert listing["average_rating"] == shown["average_rating"] == in_list["average_rating"]
    assert listing["review_count"] == shown["review_count"] == in_list["review_count"]
    return {
        "ids": sorted(r["review_id"] for r in listing["reviews"]),
        "average": listing["average_rating"],
        "count": listing["review_count"],
        "distribution": listing["distribution"],
        "stored": kept,
    }


# --- flagging -----------------------------------------------------------------------------


def test_any_key_but_the_authors_may_flag_once(api: Api, market: Market, gpu: str) -> None:
    target = market.reviewed("c-1", gpu, 1, "terrible")
    rid = target["review_id"]
    other_client = market.client("c-2")
    body = ok(_flag(api, other_client, rid, "rude"), 201)
    assert body["review_id"] == rid and body["rating"] == 1 and body["comment"] == "terrible"
    assert "hidden" not in body and "flag_count" not in body
    ok(_flag(api, market.miner_key, rid, "false claims"), 201)
    ok(_flag(api, ADMIN_KEY, rid, "check"), 201)
    assert_error(_flag(api, market.clients["c-1"], rid, "regret"), 409, "own_review")

    assert_error(_flag(api, other_client, rid, "again"), 409, "already_flagged")
    # Per owner, not per key.
    assert_error(_flag(api, api.key("client", "c-2"), rid, "again"), 409, "already_flagged")
    assert_error(_flag(api, "", rid), 401, "authentication_required")
    assert_error(_flag(api, "not-a-key", rid), 401, "invalid_api_key")
    assert_error(_flag(api, other_client, "rev_nope"), 404, "review_not_found")

    [item] = _flagged(api)
    assert item["review_id"] == rid
    assert item["flag_count"] == 3
    assert item["flag_reasons"] == ["rude", "false claims", "check"]
    assert item["hidden"] is False
    # Flagging alone hides nothing.
    assert public_reviews(api, gpu)["review_count"] == 1


def test_a_hidden_review_cannot_be_flagged_nor_seen_through_a_flag(
    api: Api, market: Market, gpu: str
) -> None:
    rid = market.reviewed("c-1", gpu, 1, "secret words")["review_id"]
    ok(_flag(api, market.miner_key, rid, "rude"), 201)
    ok(_hide(api, rid))
    flagging = _flag(api, market.client("c-2"), rid, "again")
    assert_error(flagging, 404, "review_not_found")
    assert "secret words" not in flagging.text and "c-1" not in flagging.text
    # Nor edited by anyone but its author, who is told it does not exist.
    other = api.call(
        "PUT", f"/v1/marketplace/reviews/{rid}", market.clients["c-2"],
        json={"rating": 5, "comment": "x"},
    )  # fmt: skip
    assert_error(other, 404, "review_not_found")
    [item] = _flagged(api, include_hidden=True)
    assert item["flag_count"] == 1  # the assert_error flag was not counted
    # Restored, it may be flagged again.
    ok(_restore(api, rid))
    ok(_flag(api, market.client("c-3"), rid, "still rude"), 201)


@pytest.mark.parametrize("reason", ["", "r" * 501, None, 5], ids=repr)
def test_flag_needs_a_reason(api: Api, market: Market, gpu: str, reason: Any) -> None:
    rid = market.reviewed("c-1", gpu, 2)["review_id"]
    assert_error(_flag(api, market.miner_key, rid, reason), 422, "validation_error")
    assert_error(
        api.call("POST", f"/v1/marketplace/reviews/{rid}/flag", market.miner_key, json={}), 422
    )
    assert _flagged(api) == []
    ok(_flag(api, market.miner_key, rid, "r" * 500), 201)


def test_flagged_list_is_admin_only_and_most_flagged_first(
    api: Api, market: Market, gpu: str
) -> None:
    once = market.reviewed("c-1", gpu, 1)["review_id"]
    thrice = market.reviewed("c-2", gpu, 2)["review_id"]
    market.reviewed("c-3", gpu, 5)  # never flagged
    twice = market.reviewed("c-4", gpu, 3)["review_id"]
    flaggers = [api.key("client", f"f-{n}") for n in range(3)]
    ok(_flag(api, flaggers[0], once, "a"), 201)
    for n, key in enumerate(flaggers):
        ok(_flag(api, key, thrice, f"b{n}"), 201)
    for key in flaggers[:2]:
        ok(_flag(api, key, twice, "c"), 201)

    listed = _flagged(api)
    assert [(r["review_id"], r["flag_count"]) for r in listed] == [
        (thrice, 3),
        (twice, 2),
        (once, 1),
    ]
    assert listed[0]["flag_reasons"] == ["b0", "b1", "b2"]
    assert [r["review_id"] for r in _flagged(api, limit=1, offset=1)] == [twice]

    assert_error(api.call("GET", "/v1/admin/reviews/flagged", flaggers[0]), 403, "wrong_role")
    assert_error(api.call("GET", "/v1/admin/reviews/flagged", market.miner_key), 403, "wrong_role")
    assert_error(api.call("GET", "/v1/admin/reviews/flagged", ""), 401, "authentication_required")


# --- hiding and restoring -----------------------------------------------------------------


def test_hide_removes_from_list_and_aggregates_and_restore_brings_both_back(
    api: Api, market: Market, gpu: str, app: FastAPI
) -> None:
    kept = market.reviewed("c-1", gpu, 5)["review_id"]
    market.reviewed("c-2", gpu, 4)
    bad = market.reviewed("c-3", gpu, 1, "<a href=spam>cheap tokens</a>")["review_id"]
    ok(_flag(api, market.client("c-9"), bad, "spam link"), 201)
    before = _state(api, app, gpu)
    assert before["average"] == "3.33" and before["count"] == 3
    assert before["distribution"] == {"1": 1, "2": 0, "3": 0, "4": 1, "5": 1}

    hidden = ok(_hide(api, bad))
    assert hidden["review_id"] == bad and hidden["hidden"] is True
    assert hidden["flag_count"] == 1 and hidden["flag_reasons"] == ["spam link"]
    after = _state(api, app, gpu)
    assert bad not in after["ids"] and kept in after["ids"]
    assert after["average"] == "4.50" and after["count"] == 2
    assert after["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}
    assert after["stored"] == (9, 2)
    # Sorting by the lowest rating no longer finds it.
    assert public_reviews(api, gpu, sort="lowest")["reviews"][0]["rating"] == 4

    # The flagged queue drops it unless asked for hidden ones too.
    assert _flagged(api) == []
    [again] = _flagged(api, include_hidden="true")
    assert again["review_id"] == bad and again["hidden"] is True

    # Hiding twice changes nothing more.
    assert ok(_hide(api, bad))["hidden"] is True
    assert _state(api, app, gpu) == after

    restored = ok(_restore(api, bad))
    assert restored["hidden"] is False
    assert _state(api, app, gpu) == before
    assert [r["review_id"] for r in _flagged(api)] == [bad]
    # Restoring twice changes nothing more.
    assert ok(_restore(api, bad))["hidden"] is False
    assert _state(api, app, gpu) == before


def test_hiding_the_only_review_empties_the_aggregates(
    api: Api, market: Market, gpu: str, app: FastAPI
) -> None:
    rid = market.reviewed("c-1", gpu, 4)["review_id"]
    ok(_hide(api, rid))
    state = _state(api, app, gpu)
    assert state["average"] is None and state["count"] == 0 and state["ids"] == []
    assert state["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}
    ok(_restore(api, rid))
    assert _state(api, app, gpu)["average"] == "4.00"


def test_hidden_review_edited_by_its_author_comes_back_with_the_new_rating(
    api: Api, market: Market, gpu: str, app: FastAPI
) -> None:
    rid = market.reviewed("c-1", gpu, 1)["review_id"]
    market.reviewed("c-2", gpu, 5)
    ok(_hide(api, rid))
    edited = ok(
        api.call("PUT", f"/v1/marketplace/reviews/{rid}", market.clients["c-1"], json={"rating": 3})
    )
    # Still hidden: the aggregates only count the visible review.
    assert edited["average_rating"] == "5.00" and edited["review_count"] == 1
    assert _state(api, app, gpu)["stored"] == (5, 1)
    ok(_restore(api, rid))
    state = _state(api, app, gpu)
    assert state["stored"] == (8, 2) and state["average"] == "4.00"


def test_hidden_review_still_counts_as_the_clients_one_review(
    api: Api, market: Market, gpu: str
) -> None:
    rid = market.reviewed("c-1", gpu, 1)["review_id"]
    ok(_hide(api, rid))
    again = api.call(
        "POST",
        f"/v1/marketplace/gpu/{gpu}/reviews",
        market.clients["c-1"],
        json={"rating": 5, "comment": None},
    )
    assert_error(again, 409, "review_exists")


def test_only_admins_hide_or_restore(api: Api, market: Market, gpu: str, app: FastAPI) -> None:
    rid = market.reviewed("c-1", gpu, 2)["review_id"]
    before = _state(api, app, gpu)
    for action in (_hide, _restore):
        assert_error(action(api, rid, market.clients["c-1"]), 403, "wrong_role")
        assert_error(action(api, rid, market.miner_key), 403, "wrong_role")
        assert_error(action(api, rid, ""), 401, "authentication_required")
        assert_error(action(api, "rev_nope"), 404, "review_not_found")
    assert _state(api, app, gpu) == before


def test_an_admin_key_created_through_the_api_may_moderate(
    api: Api, market: Market, gpu: str
) -> None:
    rid = market.reviewed("c-1", gpu, 2)["review_id"]
    moderator = api.key("admin", "mod-1")
    ok(_flag(api, market.client("c-2"), rid, "meh"), 201)
    assert [r["review_id"] for r in _flagged(api, moderator)] == [rid]
    assert ok(_hide(api, rid, moderator))["hidden"] is True
    assert public_reviews(api, gpu)["review_count"] == 0
