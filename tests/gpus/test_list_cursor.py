"""Keyset paging of ``GET /v1/marketplace/gpu/list``: a full page carries ``X-Next-Cursor``,
following it visits every GPU once in the sort's order (ties included), the last page has
none, and a cursor that this list did not give out is a 422. Also the AI model filter, and
a GPU's JSON following every change to its row at once."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.support.api import Api
from tests.support.gpus import GPU_LIST, gpu_path, list_gpus
from tests.support.responses import assert_error

SORTS = ("price", "memory", "rating", "newest", "uptime")


@pytest.fixture
def gpus(api: Api, database_url: str) -> list[str]:
    """Eleven GPUs with repeated prices, memory sizes, ratings and registration times, so
    every sort has ties that only the id breaks."""
    miner = api.key("miner", "m-1")
    ids = []
    for i in range(11):
        ids.append(
            api.register_gpu(
                miner,
                name=f"RTX {4080 + i % 3 * 10}",
                memory_gb=[24, 48, 80][i % 3],
                price_per_hour=["0.5", "0.7"][i % 2],
                ai_models=["llama2-7b"] if i % 4 == 0 else [],
            )
        )
        if i % 3 == 2:
            api.clock.advance(seconds=5)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            for i, gpu_id in enumerate(ids):
                conn.execute(
                    text(
                        "UPDATE gpus SET rating_sum = :s, review_count = :c, uptime_7d_bp = :u "
                        "WHERE id = :id"
                    ),
                    {"s": (i % 3) * 4, "c": 2 if i % 3 else 0, "u": (i % 3) * 5000, "id": gpu_id},
                )
    finally:
        engine.dispose()
    return ids


def _pages(api: Api, limit: int, **params: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        query = {"limit": limit, **params} | ({"cursor": cursor} if cursor else {})
        response = api.call("GET", GPU_LIST, params=query)
        assert response.status_code == 200, response.text
        pages.append([g["gpu_id"] for g in response.json()])
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            return pages
        assert len(pages[-1]) == limit


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("limit", [1, 3, 11])
def test_following_the_cursor_visits_the_whole_sorted_list_once(
    api: Api, gpus: list[str], sort: str, limit: int
) -> None:
    everything = [g["gpu_id"] for g in list_gpus(api, sort=sort)]
    pages = _pages(api, limit, sort=sort)

    assert [g for page in pages for g in page] == everything
    assert sorted(everything) == sorted(gpus)
    assert all(len(page) == limit for page in pages[:-1])


def test_the_cursor_keeps_the_filters(api: Api, gpus: list[str]) -> None:
    cheap = [g["gpu_id"] for g in list_gpus(api, price_max="0.5", sort="memory")]

    pages = _pages(api, 2, price_max="0.5", sort="memory")

    assert [g for page in pages for g in page] == cheap
    assert len(cheap) == 6


def test_offset_keeps_working_beside_the_cursor(api: Api, gpus: list[str]) -> None:
    everything = [g["gpu_id"] for g in list_gpus(api)]
    by_offset = [[g["gpu_id"] for g in list_gpus(api, limit=4, offset=o)] for o in (0, 4, 8)]

    assert [g for page in by_offset for g in page] == everything


def test_a_short_page_has_no_cursor(api: Api, gpus: list[str]) -> None:
    response = api.call("GET", GPU_LIST, params={"limit": 12})

    assert len(response.json()) == 11
    assert "X-Next-Cursor" not in response.headers


@pytest.mark.parametrize("cursor", ["", "not base64 !", "W10", "WyJwcmljZSIsIDEsIDJd", "x" * 513])
def test_a_cursor_this_list_did_not_give_out_is_422(api: Api, gpus: list[str], cursor: str) -> None:
    response = api.call("GET", GPU_LIST, params={"cursor": cursor, "sort": "price"})
    if cursor == "":
        assert response.status_code == 200  # an empty cursor is no cursor
        return
    # Longer than the document's maxLength is a shape error; the rest is this list's rule.
    assert_error(response, 422, "validation_error" if len(cursor) > 512 else "invalid_cursor")


def _cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "values"),
    [
        ("price", ["price", 2**63, "gpu_x"]),  # past a 64-bit column
        ("memory", ["memory", -(2**63) - 1, 1, "gpu_x"]),
        ("newest", ["newest", "9999-12-31T23:59:59-23:59", "gpu_x"]),  # past year 9999 in UTC
        ("newest", ["newest", "0001-01-01T00:00:00+23:59", "gpu_x"]),  # before year 1
    ],
)
def test_a_cursor_with_values_out_of_range_is_422(
    api: Api, gpus: list[str], sort: str, values: list[object]
) -> None:
    response = api.call("GET", GPU_LIST, params={"cursor": _cursor(*values), "sort": sort})
    assert_error(response, 422, "invalid_cursor")


def test_a_cursor_from_another_sort_is_422(api: Api, gpus: list[str]) -> None:
    first = api.call("GET", GPU_LIST, params={"limit": 2, "sort": "rating"})
    cursor = first.headers["X-Next-Cursor"]

    body = assert_error(
        api.call("GET", GPU_LIST, params={"limit": 2, "sort": "price", "cursor": cursor}),
        422,
        "invalid_cursor",
    )
    assert "cursor" in body["detail"]


def test_ai_model_filter(api: Api, gpus: list[str]) -> None:
    serving = {g["gpu_id"] for g in list_gpus(api, ai_model="Llama2 7B")}

    assert serving == {gpus[i] for i in (0, 4, 8)}
    assert list_gpus(api, ai_model="no-such-model") == []


def test_every_change_to_a_gpu_shows_at_once(api: Api, gpus: list[str], database_url: str) -> None:
    listed = {g["gpu_id"]: g for g in list_gpus(api)}
    assert listed[gpus[1]]["description"] is None

    miner = api.key("miner", "m-1")
    changed = api.call("PATCH", gpu_path(gpus[1]), miner, json={"description": "water cooled"})
    assert changed.status_code == 200, changed.text
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:  # as another process, or an operator, would
            conn.execute(
                text("UPDATE gpus SET total_bookings = 41 WHERE id = :id"), {"id": gpus[2]}
            )
    finally:
        engine.dispose()

    listed = {g["gpu_id"]: g for g in list_gpus(api)}
    assert listed[gpus[1]]["description"] == "water cooled"
    assert listed[gpus[2]]["total_bookings"] == 41
    assert api.call("GET", gpu_path(gpus[2])).json()["total_bookings"] == 41
