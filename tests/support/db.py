"""The database under an app, read directly by the tests that check what was stored."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool


@cache
def _engine(url: str) -> Engine:
    return create_engine(url, poolclass=NullPool)  # nothing held open between checks


def engine(app: Any) -> Engine:
    """An engine on the app's database (a FastAPI app, or anything with its ``state``)."""
    return _engine(app.state.settings.resolved_database_url())
