"""The market's tests: after each, the ledger and the bookings keep their invariants (no GPU
held twice, every balance its entries, the sum zero)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.accounts.ledger_invariants import assert_ledger_invariants


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(database_url: str) -> Iterator[None]:
    yield
    assert_ledger_invariants(database_url)
