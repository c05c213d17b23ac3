"""The transactional outbox: events a write transaction emits (``Conn.emit``) are written by
that transaction just before it commits, so an event exists exactly when its change does.

Event ids rise in commit order. On PostgreSQL two transactions may draw ids from a sequence
in one order and commit in the other, and a reader that had seen the later id would never go
back for the earlier; so the ids are drawn under a transaction-level advisory lock, taken
only at the end of the transaction (the time from the insert to the commit). SQLite has one
writer at a time. Listeners of ``CHANNEL`` hear the owners concerned when it commits."""

from __future__ import annotations

from collections.abc import Sequence

from aitbc.store.conn import Conn
from aitbc.store.outgoing import CHANNEL, EVENTS_LOCK, Outgoing, payload
from aitbc.store.query import Query
from aitbc.store.values import naive_utc

_WRITE_PG = Query.postgresql_only(
    f"""
WITH turn AS MATERIALIZED (
    SELECT pg_advisory_xact_lock({EVENTS_LOCK}) AS held, pg_notify('{CHANNEL}', $7) AS told
),
numbered AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('events', 'id')) AS id, t.*
    FROM turn, unnest($1::varchar[], $2::timestamp[], $3::varchar[], $4::varchar[],
        $5::text[]) WITH ORDINALITY AS t(type, at, subject, subject_id, data, n)
),
written AS (
    INSERT INTO events (id, type, at, subject, subject_id, data)
    SELECT id, type, at, subject, subject_id, data FROM numbered
)
INSERT INTO event_recipients (owner_id, event_id)
SELECT DISTINCT r.owner_id, numbered.id
FROM numbered JOIN unnest($6::bigint[], $8::varchar[]) AS r(n, owner_id) ON r.n = numbered.n
"""
)
_INSERT_EVENT = Query(
    "INSERT INTO events (type, at, subject, subject_id, data) VALUES ($1, $2, $3, $4, $5) "
    "RETURNING id"
)
_INSERT_RECIPIENT = Query(
    "INSERT INTO event_recipients (owner_id, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
)


async def flush(conn: Conn, items: Sequence[Outgoing]) -> None:
    """Write ``items`` in ``conn``'s transaction, as its last statements."""
    told = payload([owner for item in items for owner in item.owners])
    if conn.dialect == "postgresql":
        numbers = [n for n, item in enumerate(items, start=1) for _ in item.owners]
        owners = [owner for item in items for owner in item.owners]
        await conn.execute(
            _WRITE_PG,
            [i.type for i in items],
            [naive_utc(i.at) for i in items],
            [i.subject for i in items],
            [i.subject_id for i in items],
            [i.data for i in items],
            numbers,
            told,
            owners,
        )
        return
    for item in items:
        event_id = await conn.fetchval(
            _INSERT_EVENT, item.type, item.at, item.subject, item.subject_id, item.data
        )
        await conn.executemany(_INSERT_RECIPIENT, [(o, event_id) for o in set(item.owners)])
    await conn.notify(CHANNEL, told)
