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

_COLUMNS = "r.event_id AS id, e.type, e.at, e.subject, e.subject_id, e.data"
_FROM = "event_recipients r JOIN events e ON e.row_id = r.row_id"
_ROWS = Query("SELECT min(row_id), max(row_id) FROM events")
_LAST_ID = Query("SELECT coalesce(max(event_id), 0) FROM event_recipients WHERE owner_id = $1")
_FIRST_FROM = Query("SELECT row_id, at FROM events WHERE row_id >= $1 ORDER BY row_id LIMIT 1")
_PRUNE_EVENTS = Query("DELETE FROM events WHERE row_id < $1")
# An hourly scan: the recipients of events pruned (no index to find them by row).
_PRUNE_RECIPIENTS = Query(
    "DELETE FROM event_recipients WHERE NOT EXISTS "
    "(SELECT 1 FROM events e WHERE e.row_id = event_recipients.row_id)"
)


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
    conn: Conn,
    owner_id: str,
    *,
    cursor: int,
    types: Sequence[str],
    limit: int,
    through: int | None = None,
) -> list[EventRecord]:
    """The owner's events after ``cursor`` (up to ``through``), oldest first."""
    params = Params(owner_id, cursor)
    where = _type_filter(types, params)
    if through is not None:
        where += f" AND r.event_id <= {params.add(through)}"
    rows = await conn.fetch(
        built(
            f"SELECT {_COLUMNS} FROM {_FROM} WHERE r.owner_id = $1 AND r.event_id > $2 {where} "
            f"ORDER BY r.event_id LIMIT {params.add(limit)}"
        ),
        *params.values,
    )
    return [_record(row) for row in rows]


async def last_id(conn: Conn, owner_id: str) -> int:
    """The number of the owner's newest event (0: none)."""
    return int(await conn.fetchval(_LAST_ID, owner_id))


async def newest(
    conn: Conn, owner_id: str, *, types: Sequence[str], limit: int
) -> list[EventRecord]:
    """The owner's ``limit`` newest events, oldest first."""
    params = Params(owner_id)
    where = _type_filter(types, params)
    rows = await conn.fetch(
        built(
            f"SELECT {_COLUMNS} FROM {_FROM} WHERE r.owner_id = $1 {where} "
            f"ORDER BY r.event_id DESC LIMIT {params.add(limit)}"
        ),
        *params.values,
    )
    return [_record(row) for row in reversed(rows)]


async def _first_kept(conn: Conn, before: datetime) -> int | None:
    """The first row written at or after ``before``, by a search over the rows' order (rows
    are written in time order, give or take the clocks of the nodes): the events table needs
    no index on time. Never past the newest row, which is kept, so SQLite's row ids (the
    events' numbers there) are never given again."""
    low, high = (await conn.fetch_values(_ROWS))[0]
    if low is None:
        return None
    kept = high
    while low <= high:
        middle = (low + high) // 2
        row = await conn.fetchrow(_FIRST_FROM, middle)
        if row is None or row["row_id"] > high:
            high = middle - 1
        elif as_time(row["at"]) < before:
            low = int(row["row_id"]) + 1
        else:
            kept, high = int(row["row_id"]), middle - 1
    return int(kept)


async def prune(conn: Conn, *, now: datetime, retention: timedelta) -> int:
    """Forget the events older than ``retention`` (the sweeper, hourly)."""
    kept = await _first_kept(conn, now - retention)
    if kept is None:
        return 0
    pruned = await conn.execute(_PRUNE_EVENTS, kept)
    if pruned:
        await conn.execute(_PRUNE_RECIPIENTS)
    return pruned
