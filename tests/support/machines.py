"""Hypothesis state machines that drive an app over HTTP, each example on a clean database of
its own: pytest's fixtures are per test, not per example."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test
from sqlalchemy.engine import make_url

from aitbc.app import create_app
from aitbc.config import Settings
from aitbc.kit.clock import ManualClock
from tests.accounts.ledger_invariants import LedgerChecker
from tests.support.api import PG_URL, Api
from tests.support.client import FastTestClient


class AppMachine(RuleBasedStateMachine):
    """A state machine with an app of its own on a manual clock (``api``), and a checker of
    the ledger's invariants on its database; both closed at the example's end."""

    def __init__(self, app_settings: Settings) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.app = create_app(app_settings, clock=self.clock)
        self.http = FastTestClient(self.app, raise_server_exceptions=False)
        self.http.__enter__()
        self.api = Api(client=self.http, clock=self.clock)
        self.checker = LedgerChecker(app_settings.database_url)

    def teardown(self) -> None:
        self.http.__exit__(None, None, None)
        self.checker.close()


def fresh_databases(
    template_db: str, directory: Path, request: pytest.FixtureRequest
) -> Callable[[], str]:
    """A factory of clean databases, one per example: a copy of the SQLite template, or the
    PostgreSQL one emptied as before every test (tests/conftest.py)."""
    counter = itertools.count()

    def fresh() -> str:
        if PG_URL:
            request.getfixturevalue("_emptied")()
            return template_db
        target = directory / f"example-{next(counter)}.db"
        shutil.copyfile(make_url(template_db).database or "", target)
        return f"sqlite:///{target}"

    return fresh


def run_machine(
    machine: Callable[[str], RuleBasedStateMachine],
    request: pytest.FixtureRequest,
    *,
    examples: int,
    steps: int,
) -> None:
    """Run ``machine`` (made with a database's URL) for ``examples`` sequences of up to
    ``steps`` steps, each on a fresh database from the run's template."""
    template_db: str = request.getfixturevalue("template_db")
    directory: Path = request.getfixturevalue("tmp_path")
    fresh = fresh_databases(template_db, directory, request)
    run_state_machine_as_test(
        # Hypothesis calls the factory for each example; its stubs ask for a class.
        lambda: machine(fresh()),  # type: ignore[arg-type]
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
