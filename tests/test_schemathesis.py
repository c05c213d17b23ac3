"""A bounded property-based run over every operation of the OpenAPI document (schemathesis): a
few generated requests each, with a fixed seed, against the server over real HTTP, with a key
of the role the operation is for. No answer may be a server error, and every answer must be
one the document declares (status, content type, body schema, headers); every request the
document calls valid is accepted and every one it calls invalid refused (schemathesis's
checks, all but response time). Runs on both databases, as the whole suite does: drawing the
requests is most of its time, so ``./scripts/test`` shares the operations between two of its
runs (``AITBC_FUZZ_SHARE``), each of which sends every request to a server on the other
database as well (``AITBC_FUZZ_ALSO_SQLITE`` in a PostgreSQL run, ``AITBC_FUZZ_POSTGRES_URL``
in a SQLite one), and the third leaves the test to them (``AITBC_FUZZ_ELSEWHERE``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)
from sqlalchemy import create_engine

from aitbc.app import create_app
from aitbc.kit.clock import ManualClock
from aitbc.migrate import upgrade
from aitbc.models import Base
from tests.support.api import ADMIN_KEY, PG_URL, Api, settings_for
from tests.support.served import postgres_database, serve

# Requests per operation: documented-valid ones, then invalid ones (fewer: most are refused
# by the same few checks).
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}
# Refusals of a request the document calls valid that a schema cannot foresee: the domain's
# rules (a booking's length or a price's minimum set by the operator, an idempotency key used
# for another request, a cursor this list did not give out, a job's result asked for before
# it ended: 425), each with its own code. A
# refusal as validation_error or invalid_json is the document's failure and is not excused.
SHAPE_CODES = {"validation_error", "invalid_json"}


def valid_data_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    try:
        return positive_data_acceptance(ctx, response, case)  # type: ignore[no-any-return]
    except Exception:
        if 400 <= response.status_code < 500 and response.json().get("error") not in SHAPE_CODES:
            return None
        raise


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    valid_data_accepted,
    missing_required_header,
    unsupported_method,
    use_after_free,
    ensure_resource_availability,
    ignored_auth,
    allow_header_conformance,
]


ALSO_POSTGRES = os.environ.get("AITBC_FUZZ_POSTGRES_URL", "") if not PG_URL else ""
ALSO_SQLITE = bool(PG_URL) and os.environ.get("AITBC_FUZZ_ALSO_SQLITE") == "1"
ELSEWHERE = os.environ.get("AITBC_FUZZ_ELSEWHERE") == "1"
# This run's share of the operations, "k/n": every n-th from the k-th (two runs of
# ./scripts/test each draw half, and send every request to both databases).
SHARE = os.environ.get("AITBC_FUZZ_SHARE", "0/1")


@pytest.fixture
def keys(api: Api) -> dict[str, str]:
    return _keys(api)


def _keys(api: Api) -> dict[str, str]:
    """A miner with a GPU, a funded client, and the admin: something for requests to find."""
    miner, client = api.key("miner", "fuzz-miner"), api.key("client", "fuzz-client")
    _stock(api, miner)
    return {"admin": ADMIN_KEY, "miner": miner, "client": client}


@contextlib.contextmanager
def _other_database(tmp_path: Path) -> Iterator[str | None]:
    """A database of its own on the other backend, if this run is to send there too."""
    if ALSO_POSTGRES:
        with postgres_database(ALSO_POSTGRES, "fuzz") as url:
            yield url
    elif ALSO_SQLITE:
        url = f"sqlite:///{tmp_path / 'fuzz.db'}"
        upgrade(url)
        yield url
    else:
        yield None


@pytest.fixture
def servers(
    live_server: str, keys: dict[str, str], tmp_path: Path
) -> Iterator[list[tuple[str, dict[str, str]]]]:
    """The servers every drawn request goes to, each with its keys: the run's, and with
    ``AITBC_FUZZ_POSTGRES_URL`` or ``AITBC_FUZZ_ALSO_SQLITE`` one on the other database."""
    with _other_database(tmp_path) as url:
        if url is None:
            yield [(live_server, keys)]
            return
        clock = ManualClock()
        app = create_app(settings_for(url), clock=clock)
        with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
            other = _keys(Api(client=cast(TestClient, client), clock=clock))
            yield [(live_server, keys), (base_url, other)]


def _stock(api: Api, miner: str) -> None:
    api.register_gpu(miner)
    deposited = api.call(
        "POST", "/v1/admin/accounts/fuzz-client/deposit", ADMIN_KEY, json={"amount": "100"}
    )
    assert deposited.status_code == 201, deposited.text


def _restocked(api: Api, database_url: str, miner: str) -> None:
    """The market as ``keys`` left it: every row but the API keys deleted, the GPU and the
    money made again."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "api_keys":
                conn.execute(table.delete())
    engine.dispose()
    _stock(api, miner)


def operations(live_server: str) -> list[Any]:
    loaded = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    # An operation the loader cannot read is an Err, whose missing .ok() fails the run.
    found = [result.ok() for result in loaded.get_all_operations()]  # type: ignore[union-attr]
    # The long poll waits up to 30 s by design; the protocol tests drive it.
    return [op for op in found if not op.path.endswith("/poll")]


def key_for(path: str, method: str, keys: dict[str, str]) -> str:
    """The role an operation is for, read from its path (the rest is a client's)."""
    method = method.upper()
    if path.startswith("/v1/admin") or path.endswith("sync-offers"):
        return keys["admin"]
    if path.startswith("/v1/miners") or (
        path.startswith("/v1/marketplace/gpu") and method in ("PATCH", "DELETE")
    ):
        return keys["miner"]
    if path == "/v1/marketplace/gpu/register":
        return keys["miner"]
    return keys["client"]


def _without_a_long_wait(case: Any) -> None:
    """A drawn long poll (``GET /v1/events?wait=``) waits at most a tenth of a second: past
    the last event it would hold the run for its whole wait, or outlast the client's 10 s.
    The events tests drive the wait itself; the value stays one the document allows."""
    wait = (case.query or {}).get("wait")
    if isinstance(wait, int | float) and not isinstance(wait, bool) and 0.1 < wait <= 60:
        case.query["wait"] = 0.1


def exercise(
    operation: Any, servers: list[tuple[str, dict[str, str]]], mode: GenerationMode
) -> None:
    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def answers_as_documented(case: Any) -> None:
        _without_a_long_wait(case)
        for base_url, keys in servers:
            key = key_for(case.path, case.method, keys)
            case.call_and_validate(base_url=base_url, headers={"X-Api-Key": key}, checks=CHECKS)

    answers_as_documented()


@pytest.mark.skipif(ELSEWHERE, reason="a run beside this one sends every request here too")
def test_every_operation_answers_as_documented(
    servers: list[tuple[str, dict[str, str]]],
) -> None:
    found = operations(servers[0][0])
    assert len(found) > 50, [op.label for op in found]
    first, every = (int(part) for part in SHARE.split("/"))
    failures: dict[str, str] = {}
    for operation in found[first::every]:
        try:
            exercise(operation, servers, GenerationMode.POSITIVE)
            # Unsatisfiable: nothing it takes can be made invalid (no body, no bounded
            # parameter).
            with contextlib.suppress(Unsatisfiable):
                exercise(operation, servers, GenerationMode.NEGATIVE)
        # Every operation runs; all failures are reported together (schemathesis raises a
        # group of them, which is not an Exception).
        except BaseException as exc:
            failures[operation.label] = str(exc)[:1500]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_chains_of_operations_answer_as_documented(
    live_server: str, keys: dict[str, str], api: Api, database_url: str
) -> None:
    """The stateful phase: schemathesis follows the links between operations it reads from
    the document (an id a response returns, used by the next call: a booking released or
    extended, a job cancelled, a key revoked), a bounded number of chains with a fixed seed,
    and checks every answer as above. Each chain starts from the same market: what one chain
    left behind would answer the same calls of the next differently, and the generator,
    which replays choices, requires that they are answered alike."""
    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json").exclude(
        path_regex=r"/poll$"
    )
    checks = CHECKS

    class Chains(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            _restocked(api, database_url, keys["miner"])

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            key = key_for(case.path, case.method, keys)
            return {"base_url": live_server, "headers": {"X-Api-Key": key}}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=checks)

    Chains.run(
        settings=settings(
            max_examples=40,
            stateful_step_count=6,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
