"""Reading the event log: an owner's events after a cursor, the newest ones, and pruning
what is older than the retention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aitbc.errors import Invalid
from aitbc.events.log import FAMILIES, TYPES
from aitbc.store.conn import Conn
from aitbc.store.query import Params, Query, built
from aitbc.store.values import as_json, as_time, iso

_COLUMNS = "e.id, e.type, e.at, e.subject, e.subject_id, e.data"
_PRUNE_RECIPIENTS = Query("DELETE FROM event_recipients WHERE event_id <= $1")
_PRUNE_EVENTS = Query("DELETE FROM events WHERE id <= $1")
_LAST_BEFORE = Query("SELECT id FROM events WHERE at < $1 ORDER BY at DESC LIMIT 1")


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    type: str
    at: datetime
    subject: str
    subject_id: str
    data: dict[str, Any]

    def body(self) -> dict[str, Any]:
        """As the feed and a webhook delivery show it."""
        return {
            "id": self.id,
            "type": self.type,
            "at": iso(self.at),
            "object": self.subject,
            "object_id": self.subject_id,
            "data": self.data,
        }


def parse_types(text: str | None) -> tuple[str, ...]:
    """``booking.created,job.*``: each a known type or a family with ``.*``."""
    if not text:
        return ()
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        family = name.removesuffix(".*")
        if name not in TYPES and not (name.endswith(".*") and family in FAMILIES):
            raise Invalid(
                f"Unknown event type {name!r}: one of {', '.join(TYPES)}, or a family such "
                f"as {FAMILIES[0]}.*.",
                code="unknown_event_type",
            )
    return names


def matches(types: Sequence[str], event_type: str) -> bool:
    if not types:
        return True
    return any(t == event_type or (t[-2:] == ".*" and event_type.startswith(t[:-1])) for t in types)


def _type_filter(types: Sequence[str], params: Params) -> str:
    if not types:
        return ""
    exact = [t for t in types if not t.endswith(".*")]
    families = [t[:-1] + "%" for t in types if t.endswith(".*")]
    parts = [f"e.type IN ({params.add_all(exact)})"] if exact else []
    parts += [f"e.type LIKE {params.add(f)}" for f in families]
    return f"AND ({' OR '.join(parts)})"


def _record(row: Any) -> EventRecord:
    return EventRecord(
        id=int(row["id"]),
        type=row["type"],
        at=as_time(row["at"]),
        subject=row["subject"],
        subject_id=row["subject_id"],
        data=as_json(row["data"]),
    )


async def after(
    conn: Conn, owner_id: str, *, cursor: int, types: Sequence[str], limit: int
) -> list[EventRecord]:
    """The owner's events after ``cursor``, oldest first."""
    params = Params(owner_id, cursor)
    where = _type_filter(types, params)
    rows = await conn.fetch(
        built(
            f"SELECT {_COLUMNS} FROM event_recipients r JOIN events e ON e.id = r.event_id "
            f"WHERE r.owner_id = $1 AND r.event_id > $2 {where} "
            f"ORDER BY r.event_id LIMIT {params.add(limit)}"
        ),
        *params.values,
    )
    return [_record(row) for row in rows]


async def newest(
    conn: Conn, owner_id: str, *, types: Sequence[str], limit: int
) -> list[EventRecord]:
    """The owner's ``limit`` newest events, oldest first."""
    params = Params(owner_id)
    where = _type_filter(types, params)
    rows = await conn.fetch(
        built(
            f"SELECT {_COLUMNS} FROM event_recipients r JOIN events e ON e.id = r.event_id "
            f"WHERE r.owner_id = $1 {where} ORDER BY r.event_id DESC LIMIT {params.add(limit)}"
        ),
        *params.values,
    )
    return [_record(row) for row in reversed(rows)]


async def prune(conn: Conn, *, now: datetime, retention: timedelta) -> int:
    """Forget the events older than ``retention`` (the sweeper, hourly)."""
    last = await conn.fetchval(_LAST_BEFORE, now - retention)
    if last is None:
        return 0
    await conn.execute(_PRUNE_RECIPIENTS, last)
    return await conn.execute(_PRUNE_EVENTS, last)
