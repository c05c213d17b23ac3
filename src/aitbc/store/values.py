"""Values between Python and the database, without the ORM's type machinery.

Times are stored as naive UTC: SQLite keeps them as text in SQLAlchemy's format
(``2030-01-01 00:00:00.000000``), PostgreSQL as ``timestamp``. The API shows them as ISO 8601
with a ``Z``, microseconds only when there are any."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any


def naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; use UTC-aware values")
    return moment.astimezone(UTC).replace(tzinfo=None)


def sqlite_time(moment: datetime) -> str:
    text = naive_utc(moment).isoformat(" ")
    return text if len(text) > 19 else text + ".000000"  # isoformat omits zero microseconds


def shifted(stored: str | None, seconds: float) -> str | None:
    """SQLite's ``shifted(time, seconds)``: a stored time moved by ``seconds``, in the stored
    form (PostgreSQL writes ``time + make_interval(secs => seconds)``)."""
    return None if stored is None else sqlite_time(as_time(stored) + timedelta(seconds=seconds))


def as_time(value: str | datetime) -> datetime:
    """A stored time as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def maybe_time(value: str | datetime | None) -> datetime | None:
    return None if value is None else as_time(value)


def iso(value: str | datetime | None) -> str | None:
    """A stored (or aware) time in the API's form: ``2030-01-01T00:00:00Z``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"  # isoformat leaves out zero microseconds, as wanted
    text = value
    fraction = text[20:26]
    if fraction and fraction != "000000":
        return f"{text[:10]}T{text[11:19]}.{fraction}Z"
    return f"{text[:10]}T{text[11:19]}Z"


def as_json(value: Any) -> Any:
    """A stored JSON column: SQLite and asyncpg give its text, psycopg the parsed value."""
    return json.loads(value) if isinstance(value, str | bytes) else value
