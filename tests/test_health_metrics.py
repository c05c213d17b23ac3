"""Operations endpoints: ``/health`` (with a database round trip), ``/metrics`` (Prometheus,
labelled by route template) and ``/openapi.json`` / ``/docs``."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from aitbc.app import create_app
from aitbc.config import Settings
from aitbc.kit.clock import ManualClock
from tests.support.api import ADMIN_KEY, PG_URL, Api, settings_for
from tests.support.gpus import gpu_path
from tests.support.market import heartbeat
from tests.support.responses import assert_error

# --- /health ----------------------------------------------------------------------------


def test_health_is_ok_and_names_the_database(api: Api) -> None:
    response = api.call("GET", "/health")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "status": "ok",
        "database": "postgresql" if PG_URL else "sqlite",
        # A node starts listening in the background (tests/jobs/test_wakeup_lost.py).
        "job_wakeups": body["job_wakeups"] if PG_URL else "local",
    }
    assert body["job_wakeups"] in {"listening", "reconnecting", "local"}


def test_health_is_503_when_the_database_is_unreachable(
    settings: Settings, clock: ManualClock
) -> None:
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/nothing?connect_timeout=2"
    app = create_app(settings.model_copy(update={"database_url": unreachable}), clock=clock)

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/health")

    assert_error(response, 503, "database_unavailable")


@pytest.fixture
def silent_database() -> Iterator[str]:
    """A PostgreSQL address that accepts connections and never answers (a hung server)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"postgresql+psycopg://nobody@127.0.0.1:{listener.getsockname()[1]}/nothing"
    listener.close()
    for conn in held:
        conn.close()


def test_a_hung_database_is_reported_within_the_health_timeout(
    settings: Settings, clock: ManualClock, silent_database: str
) -> None:
    hung = settings.model_copy(
        update={
            "database_url": silent_database,
            "db_timeout_seconds": 30.0,
            "health_timeout_seconds": 0.5,
        }
    )
    with TestClient(create_app(hung, clock=clock), raise_server_exceptions=False) as client:
        for path in ("/health", "/health/ready", "/v1/health"):
            started = time.monotonic()
            response = client.get(path)
            waited = time.monotonic() - started
            assert_error(response, 503, "database_unavailable")
            assert response.headers["Retry-After"] == "5"
            assert waited < hung.health_timeout_seconds + 1, (path, waited)
        assert client.get("/health/live").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/marketplace/gpu/list",  # the request path (asyncpg)
        "/metrics",  # the ORM's (psycopg)
        "/v1/marketplace/offers",
    ],
)
def test_a_hung_database_fails_a_request_after_the_database_timeout(
    settings: Settings, clock: ManualClock, silent_database: str, path: str
) -> None:
    hung = settings.model_copy(update={"database_url": silent_database, "db_timeout_seconds": 0.3})
    with TestClient(create_app(hung, clock=clock), raise_server_exceptions=False) as client:
        started = time.monotonic()
        response = client.get(path)
        assert time.monotonic() - started < 5
    assert_error(response, 503, "database_unavailable")


# --- /metrics ---------------------------------------------------------------------------


def _samples(api: Api) -> list[Any]:
    response = api.call("GET", "/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def _value(samples: list[Any], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    return float(sum(found))


def test_request_counter_is_labelled_by_route_template(api: Api) -> None:
    gpu_id = api.register_gpu(api.key("miner", "m-1"))
    template = "/v1/marketplace/gpu/{gpu_id}"
    before = _samples(api)

    for _ in range(3):
        assert api.call("GET", gpu_path(gpu_id)).status_code == 200
    assert api.call("GET", gpu_path("gpu_missing")).status_code == 404

    after = _samples(api)
    counter = "aitbc_http_requests_total"
    ok = {"method": "GET", "route": template, "status": "200"}
    missing = {"method": "GET", "route": template, "status": "404"}
    assert _value(after, counter, **ok) - _value(before, counter, **ok) == 3
    assert _value(after, counter, **missing) - _value(before, counter, **missing) == 1
    # Requests are counted by route template, never by the ids in their paths.
    requests = [s for s in after if s.name.startswith("aitbc_http_")]
    assert requests
    assert not any(gpu_id in str(s.labels) or "gpu_missing" in str(s.labels) for s in requests)


def test_a_method_of_the_clients_making_is_counted_as_other(api: Api) -> None:
    """Each label value is a series kept for good: a client must not make them at will."""
    counter = "aitbc_http_requests_total"
    before = _value(_samples(api), counter, method="other")
    for number in range(30):
        api.client.request(f"MADEUP{number}", "/nowhere")
    after = _samples(api)
    assert _value(after, counter, method="other") - before == 30
    assert not any("MADEUP" in str(s.labels) for s in after)


def test_latency_histogram_is_labelled_by_route_template(api: Api) -> None:
    name = "aitbc_http_request_duration_seconds_count"
    labels = {"method": "GET", "route": "/v1/marketplace/gpu/list"}
    before = _value(_samples(api), name, **labels)

    api.call("GET", "/v1/marketplace/gpu/list")
    api.call("GET", "/v1/marketplace/gpu/list", params={"limit": 0})

    assert _value(_samples(api), name, **labels) - before == 2


def test_gpu_gauge_counts_gpus_by_status(api: Api) -> None:
    steady, silent = api.key("miner", "m-1"), api.key("miner", "m-2")
    kept = [api.register_gpu(steady) for _ in range(3)]
    api.register_gpu(silent)
    api.register_gpu(silent)
    api.call("DELETE", gpu_path(kept[0]), steady)
    api.clock.advance(seconds=91)
    heartbeat(api, steady)

    samples = _samples(api)

    assert _value(samples, "aitbc_gpus", status="available") == 2
    assert _value(samples, "aitbc_gpus", status="offline") == 2
    assert _value(samples, "aitbc_gpus", status="delisted") == 1


def test_gpu_gauge_follows_the_clock(api: Api) -> None:
    miner = api.key("miner", "m-1")
    api.register_gpu(miner)
    assert _value(_samples(api), "aitbc_gpus", status="available") == 1

    api.clock.advance(seconds=120)

    samples = _samples(api)
    assert _value(samples, "aitbc_gpus", status="available") == 0
    assert _value(samples, "aitbc_gpus", status="offline") == 1


# --- /openapi.json and /docs ------------------------------------------------------------

# Every endpoint of the first slice and the error statuses it is shown (by the other test
# modules) to return.
SLICE_ENDPOINTS = {
    ("post", "/v1/admin/api-keys"): {401, 403, 422},
    ("get", "/v1/admin/api-keys"): {401, 403, 422},
    ("delete", "/v1/admin/api-keys/{key_id}"): {401, 403, 404},
    ("get", "/v1/me"): {401},
    ("post", "/v1/miners/register"): {401, 403, 422},
    ("post", "/v1/miners/heartbeat"): {401, 403, 404, 422},
    ("post", "/v1/marketplace/gpu/register"): {401, 403, 422},
    ("get", "/v1/marketplace/gpu/list"): {401, 422},
    ("get", "/v1/marketplace/gpu/{gpu_id}"): {401, 404},
    ("patch", "/v1/marketplace/gpu/{gpu_id}"): {401, 403, 404, 422},
    ("delete", "/v1/marketplace/gpu/{gpu_id}"): {401, 403, 404},
    ("get", "/health"): {503},
    ("get", "/metrics"): set(),
}
ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture(scope="module")
def openapi(template_db: str) -> dict[str, Any]:
    """The document as the tests' app serves it, generated once: it is made from the routes
    and the settings, not the data (generating it costs a second, a database copy 0.04)."""
    with TestClient(create_app(settings_for(template_db), clock=ManualClock())) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    spec: dict[str, Any] = response.json()
    return spec


def _operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    assert path in spec["paths"], f"{path} missing from the OpenAPI document"
    assert method in spec["paths"][path], f"{method.upper()} {path} missing"
    operation: dict[str, Any] = spec["paths"][path][method]
    return operation


def test_the_error_body_schema_is_error_and_detail(openapi: dict[str, Any]) -> None:
    schema = openapi["components"]["schemas"]["ErrorBody"]

    assert set(schema["properties"]) == {"error", "detail"}
    assert set(schema["required"]) == {"error", "detail"}


@pytest.mark.parametrize(("method", "path"), list(SLICE_ENDPOINTS))
def test_every_endpoint_documents_its_error_responses(
    openapi: dict[str, Any], method: str, path: str
) -> None:
    responses = _operation(openapi, method, path)["responses"]

    documented = {int(status) for status in responses if int(status) >= 400}
    assert SLICE_ENDPOINTS[(method, path)] <= documented
    for status in documented:
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        assert schema.get("$ref") == ERROR_REF, (status, schema)


@pytest.mark.parametrize(("method", "path"), list(SLICE_ENDPOINTS))
def test_every_endpoint_documents_its_success_response(
    openapi: dict[str, Any], method: str, path: str
) -> None:
    operation = _operation(openapi, method, path)

    success = [s for s in operation["responses"] if 200 <= int(s) < 300]
    assert len(success) == 1
    assert operation["responses"][success[0]].get("content"), operation
    if method in ("post", "patch"):
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body["$ref"].startswith("#/components/schemas/")


def test_the_documented_success_statuses_match_the_cli_contract(openapi: dict[str, Any]) -> None:
    def statuses(method: str, path: str) -> set[str]:
        return set(_operation(openapi, method, path)["responses"])

    assert "201" in statuses("post", "/v1/marketplace/gpu/register")
    assert "201" in statuses("post", "/v1/admin/api-keys")
    listing = _operation(openapi, "get", "/v1/marketplace/gpu/list")["responses"]["200"]
    assert listing["content"]["application/json"]["schema"]["type"] == "array"


def test_docs_page_is_served_with_nothing_from_the_internet(api: Api) -> None:
    response = api.call("GET", "/docs")

    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "openapi.json" in response.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert len(assets) >= 3, assets
    for url in assets:
        assert url.startswith("/docs/assets/"), url  # no CDN
        fetched = api.call("GET", url)
        assert fetched.status_code == 200 and len(fetched.content) > 500, url
    assert api.call("GET", "/redoc").status_code == 404  # it would need a CDN


def test_the_document_states_decimal_places_and_time_ranges(openapi: dict[str, Any]) -> None:
    book = openapi["components"]["schemas"]["BookRequest"]["properties"]
    number, text = book["duration_hours"]["anyOf"][:2]
    assert number["type"] == "number" and number["multipleOf"] == 0.000001
    assert number["maximum"] == 100000 and number["exclusiveMinimum"] == 0
    assert text["type"] == "string" and re.fullmatch(text["pattern"], "1.123456")
    assert not re.fullmatch(text["pattern"], "1.1234567")
    price = book["max_price_per_hour"]["anyOf"][0]
    assert price["multipleOf"] == 0.000001 and price["minimum"] == 0
    start = book["start_time"]["anyOf"][0]
    for inside in ("2000-01-01T00:00:00Z", "8999-12-31T23:59:59+05:00"):
        assert re.match(start["pattern"], inside), inside
    for outside in ("1999-12-31T23:59:59Z", "9000-01-01T00:00:00Z", "1700000000"):
        assert not re.match(start["pattern"], outside), outside
    assert "90 days" in book["start_time"]["description"]


@pytest.mark.parametrize(
    ("since", "status"),
    [
        ("2000-01-01T00:30:00+01:00", 200),  # the year as written, whatever the zone
        ("1999-12-31T23:59:59Z", 422),
        ("9000-01-01T00:00:00Z", 422),
        ("1700000000", 422),  # a number is not an ISO 8601 time, though pydantic reads one
    ],
)
def test_times_are_accepted_exactly_as_the_document_says(api: Api, since: str, status: int) -> None:
    response = api.call("GET", "/v1/jobs/history", ADMIN_KEY, params={"from_time": since})
    assert response.status_code == status, (since, response.text)


def _every_operation(api: Api) -> list[tuple[str, str]]:
    """(method, path) of every route the app documents, read from the app itself."""
    app = cast(FastAPI, api.client.app)
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.include_in_schema]
    return sorted(
        {(method.lower(), route.path_format) for route in routes for method in route.methods or ()}
    )


def test_every_route_of_the_app_documents_its_errors_and_its_success(
    api: Api, openapi: dict[str, Any]
) -> None:
    operations = _every_operation(api)
    assert len(operations) > 60, operations
    for method, path in operations:
        operation = _operation(openapi, method, path)
        responses = operation["responses"]
        errors = {int(status) for status in responses if int(status) >= 400}
        if operation.get("parameters") or "requestBody" in operation:
            assert 422 in errors, (method, path)  # bad input can happen wherever there is input
        keyed = any(p["name"] == "X-Api-Key" for p in operation.get("parameters", []))
        if keyed:
            assert 401 in errors, (method, path)
        for status in errors:
            schema = responses[str(status)]["content"]["application/json"]["schema"]
            assert schema.get("$ref") == ERROR_REF, (method, path, status, schema)
        success = [s for s in responses if 200 <= int(s) < 300]
        assert success, (method, path)
        for status in success:  # only "nothing to say" comes without a body
            assert status == "204" or responses[status].get("content"), (method, path, status)


def test_the_docs_page_has_the_web_pages_headers(api: Api) -> None:
    docs = api.call("GET", "/docs")
    page = api.call("GET", "/")
    for header in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"):
        assert docs.headers[header] == page.headers[header], header
    assert "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"]
    assert "<script>" not in docs.text  # no inline script: the policy allows none


def test_the_document_uses_only_json_schema_keywords_for_bounds(openapi: dict[str, Any]) -> None:
    """pydantic writes a bound it cannot place as "ge"/"le", which no validator reads."""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            found.extend(f"{where}.{k}" for k in ("ge", "le", "gt", "lt") if k in node)
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(openapi, "")
    assert not found, found


@pytest.mark.parametrize(
    "text",
    ["0", "0.000000", "0.000001", "1", "+1", "007.5", "1e5", "1_000", " 1", "-0", "١٢",
     "1000000000", "1000000000.000000", "1000000000.000001", "0.0000001"],
)  # fmt: skip
def test_an_amount_sent_as_text_is_accepted_exactly_when_the_document_says(
    api: Api, openapi: dict[str, Any], text: str
) -> None:
    schema = openapi["components"]["schemas"]["DepositRequest"]["properties"]["amount"]
    [pattern] = [b["pattern"] for b in schema["anyOf"] if b.get("type") == "string"]
    deposit = api.call(
        "POST", "/v1/admin/accounts/x/deposit", ADMIN_KEY, json={"amount": text},
        params={"create": "true"},
    )  # fmt: skip
    documented = re.fullmatch(pattern, text) is not None
    assert (deposit.status_code == 201) == documented, (text, deposit.text)


def test_the_document_says_when_x_miner_id_is_required(openapi: dict[str, Any]) -> None:
    """Required for an admin only: the schema cannot say so by role, the description does,
    with the code the server answers."""
    register = _operation(openapi, "post", "/v1/marketplace/gpu/register")
    [header] = [p for p in register["parameters"] if p["name"] == "X-Miner-ID"]
    assert "admin" in header["description"] and "miner_id_required" in header["description"]


def test_the_registry_figures_are_read_once_per_interval_however_often_scraped(
    api: Api,
) -> None:
    """A node scraped through a balancer by several scrapers reads the registry's figures
    once per ``metrics_interval_seconds`` (15); its own request figures are always fresh."""
    miner = api.key("miner", "m-1")
    api.register_gpu(miner)
    name = "aitbc_http_request_duration_seconds_count"
    labels = {"method": "GET", "route": "/v1/marketplace/gpu/list"}
    first = _samples(api)
    assert _value(first, "aitbc_gpus", status="available") == 1

    api.register_gpu(miner)
    api.call("GET", "/v1/marketplace/gpu/list")
    api.clock.advance(seconds=14)
    within = _samples(api)
    assert _value(within, "aitbc_gpus", status="available") == 1  # as read 14 s ago
    assert _value(within, name, **labels) - _value(first, name, **labels) == 1

    api.clock.advance(seconds=1)
    assert _value(_samples(api), "aitbc_gpus", status="available") == 2
