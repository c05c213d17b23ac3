"""Boundaries the import contracts cannot see: which domain's SQL names which table."""

from __future__ import annotations

import re
from pathlib import Path

import aitbc.bookings

_TOUCHES_JOBS = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+jobs\b", re.IGNORECASE)


def test_the_bookings_never_read_or_write_the_jobs_table() -> None:
    """A job riding on a booking is the jobs domain's (bookings.riders is the port)."""
    package = Path(aitbc.bookings.__file__).parent
    touching = [p.name for p in sorted(package.glob("*.py")) if _TOUCHES_JOBS.search(p.read_text())]
    assert touching == []
