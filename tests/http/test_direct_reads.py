"""The direct dispatch of request-only GET endpoints (kit.direct): it answers exactly what the
router would, for the paths the router would give the same route, and leaves every other
request to the router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import JSONResponse, Response

from aitbc.errors import NotFound
from aitbc.http.direct import DirectReads
from aitbc.http.errors import install_error_handlers
from tests.support.api import Api
from tests.support.gpus import GPU_LIST, gpu_path
from tests.support.responses import assert_error


def _app(direct: bool) -> FastAPI:
    """A small app with one request-only endpoint under a prefix that also has a literal GET
    route, a parameter route deeper down, and a POST on the same path."""
    app = FastAPI()
    install_error_handlers(app)
    seen: list[str] = []
    app.state.seen = seen

    async def item(request: Request) -> Response:
        seen.append(request.scope["route"].path)
        item_id = request.path_params["item_id"]
        if item_id == "missing":
            raise NotFound("No such item.", code="item_not_found")
        if item_id == "broken":
            raise RuntimeError("not handled by the app")
        return JSONResponse({"item": item_id, "q": request.query_params.get("q")})

    async def listing(request: Request) -> Response:
        return JSONResponse({"all": True})

    async def special() -> dict[str, str]:
        return {"special": "yes"}

    async def reviews(item_id: str) -> dict[str, str]:
        return {"reviews_of": item_id}

    async def change(item_id: str) -> dict[str, str]:
        return {"changed": item_id}

    app.get("/items/special")(special)
    app.get("/items/all")(listing)
    app.get("/items/{item_id}")(item)
    app.get("/items/{item_id}/reviews")(reviews)
    app.post("/items/{item_id}")(change)
    if direct:
        app.add_middleware(DirectReads, owner=app, endpoints=(item, listing))
    return app


@pytest.fixture
def pair() -> Iterator[tuple[TestClient, TestClient, FastAPI]]:
    direct_app = _app(True)
    with (
        TestClient(_app(False), raise_server_exceptions=False) as plain,
        TestClient(direct_app, raise_server_exceptions=False) as direct,
    ):
        yield plain, direct, direct_app


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/items/42?q=x"),
        ("GET", "/items/all"),
        ("GET", "/items/special"),
        ("GET", "/items/42/reviews"),
        ("GET", "/items/missing"),
        ("GET", "/items/"),
        ("GET", "/items/42/"),
        ("HEAD", "/items/42"),
        ("POST", "/items/42"),
        ("GET", "/items/caf%C3%A9"),
    ],
)
def test_every_answer_is_the_routers(pair: Any, method: str, path: str) -> None:
    plain, direct, _ = pair
    expected, got = plain.request(method, path), direct.request(method, path)
    assert (got.status_code, got.content) == (expected.status_code, expected.content)
    assert got.headers.get("content-type") == expected.headers.get("content-type")


def test_only_the_endpoints_asked_for_are_dispatched_directly(pair: Any) -> None:
    _, direct, app = pair
    direct.get("/items/42")
    assert app.state.seen == ["/items/{item_id}"]  # the route is in the scope, as routed
    assert direct.get("/items/special").json() == {"special": "yes"}  # the literal route
    assert direct.get("/items/42/reviews").json() == {"reviews_of": "42"}


def test_an_error_goes_to_the_apps_handler_or_on_up(pair: Any) -> None:
    _, direct, _ = pair
    assert_error(direct.get("/items/missing"), 404, "item_not_found")
    assert direct.get("/items/broken").status_code == 500


def _requests(api: Api) -> dict[tuple[str, str], float]:
    """The request counter of GET by (route, status), as /metrics shows it now."""
    text = api.call("GET", "/metrics").text
    return {
        (sample.labels["route"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "aitbc_http_requests_total" and sample.labels["method"] == "GET"
    }


def test_the_coordinator_serves_its_gpu_reads_and_health_directly_with_the_route_in_metrics(
    api: Api,
) -> None:
    middleware = [m.cls for m in api.client.app.user_middleware]  # type: ignore[attr-defined]
    assert middleware[-1] is DirectReads  # innermost: metrics and the guard see every read
    gpu_id = api.register_gpu(api.key("miner", "m-1"))
    before = _requests(api)
    assert api.call("GET", GPU_LIST).status_code == 200
    assert api.call("GET", gpu_path(gpu_id)).status_code == 200
    assert_error(api.call("GET", gpu_path("gpu_nope")), 404, "gpu_not_found")
    assert_error(api.call("GET", GPU_LIST, params={"limit": 0}), 422, "validation_error")
    assert_error(api.call("GET", GPU_LIST, "not-a-key"), 401, "invalid_api_key")
    for path in ("/health", "/v1/health"):
        answer = api.call("GET", path)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "ok"
    after = _requests(api)
    for route, status in [
        ("/v1/marketplace/gpu/list", "200"),
        ("/v1/marketplace/gpu/{gpu_id}", "200"),
        ("/v1/marketplace/gpu/{gpu_id}", "404"),
        ("/v1/marketplace/gpu/list", "422"),
        ("/v1/marketplace/gpu/list", "401"),
        ("/health", "200"),
        ("/v1/health", "200"),
    ]:
        assert after[(route, status)] == before.get((route, status), 0) + 1, (route, status)
