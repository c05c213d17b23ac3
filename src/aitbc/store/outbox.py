"""The transactional outbox: events a write transaction emits (``Conn.emit``) are written by
that transaction just before it commits, so an event exists exactly when its change does.

Readers follow events by a number that must rise in commit order: a reader that has seen
number N must never later find a smaller one. Numbers drawn inside the writing transactions
would not do (two transactions may draw in one order and commit in the other), and taking a
lock until the commit to draw them in order would make every writer wait for every other's
commit (as would NOTIFY, which PostgreSQL serialises at commit). So:

- PostgreSQL: a writer only inserts its events, and a row per event in ``events_waiting``
  (whom it is for). Once it has committed, the events are numbered: one process at a time
  (a transaction-level advisory lock, tried, never waited for) takes the committed waiting
  events, gives them the next numbers, writes who may see them (``event_recipients``, by
  number) and notifies ``CHANNEL`` with the owners concerned, all in one statement. The
  writing process does it right after its commit, before its caller hears back, one round
  at a time (``Numbering``: a writer that commits meanwhile has the round go again); a
  process that finds another process's turn leaves its events to that one's next round,
  and every process looks a few times a second (``keep_numbering``) for events left over.
- SQLite: one writer at a time commits, so an event is numbered (by its row id) and its
  recipients written as it is written; the process's own listeners hear of it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aitbc.store.conn import Conn, Writer
from aitbc.store.outgoing import CHANNEL, EVENTS_LOCK, EVERYONE, PAYLOAD_BYTES, Outgoing, payload
from aitbc.store.query import Query
from aitbc.store.values import naive_utc

log = logging.getLogger("aitbc.events")
BATCH = 1000
LOOK_EVERY_SECONDS = 0.5

# The events' rows as WITH clauses; {0}...{5}: their parameters' numbers.
_WRITE_CLAUSES = """
events_written AS (
    INSERT INTO events (type, at, subject, subject_id, data)
    SELECT * FROM unnest(${0}::varchar[], ${1}::timestamp[], ${2}::varchar[],
        ${3}::varchar[], ${5}::text[])
    RETURNING row_id
),
events_told AS (
    INSERT INTO events_waiting (row_id, owners)
    SELECT w.row_id, o.owners
    FROM (SELECT row_id, row_number() OVER (ORDER BY row_id) AS n FROM events_written) AS w
    JOIN unnest(${4}::text[]) WITH ORDINALITY AS o(owners, n) ON o.n = w.n
)"""
_WRITE_PG = Query.postgresql_only(f"WITH {_WRITE_CLAUSES.format(*range(1, 7))} SELECT 1")
# One statement, so one implicit transaction that holds the turn (a transaction-level
# advisory lock, tried, never waited for) from taking the committed waiting events to
# numbering them in the order they were written, writing who may see each, and notifying
# the owners concerned; a row with how many events it numbered (none: nothing was waiting,
# or it was not this process's turn).
_NUMBER = Query.postgresql_only(
    f"""
WITH turn AS MATERIALIZED (SELECT pg_try_advisory_xact_lock({EVENTS_LOCK}) AS ours),
taken AS MATERIALIZED (
    DELETE FROM events_waiting WHERE row_id IN (
        SELECT row_id FROM events_waiting, turn WHERE turn.ours ORDER BY row_id LIMIT {BATCH}
    )
    RETURNING row_id, owners
),
numbered AS MATERIALIZED (
    SELECT row_id, owners, nextval('event_numbers') AS id
    FROM (SELECT * FROM taken ORDER BY row_id) AS t
),
told AS (
    INSERT INTO event_recipients (owner_id, event_id, row_id)
    SELECT DISTINCT unnest(string_to_array(n.owners, ',')), n.id, n.row_id FROM numbered n
    RETURNING owner_id
),
summed AS (SELECT count(*) AS n, string_agg(DISTINCT owner_id, ',') AS owners FROM told)
SELECT (SELECT count(*) FROM numbered) AS events,
    pg_notify('{CHANNEL}',
        CASE WHEN length(owners) > {PAYLOAD_BYTES} THEN '{EVERYONE}' ELSE owners END)
FROM summed WHERE n > 0
"""
)
_ANY_WAITING = Query.postgresql_only("SELECT 1 FROM events_waiting LIMIT 1")
_INSERT_EVENT = Query(
    "INSERT INTO events (type, at, subject, subject_id, data) VALUES ($1, $2, $3, $4, $5) "
    "RETURNING row_id"
)
_INSERT_RECIPIENT = Query(
    "INSERT INTO event_recipients (owner_id, event_id, row_id) VALUES ($1, $2, $2)"
)


def _columns(items: Sequence[Outgoing]) -> list[list[Any]]:
    return [
        [i.type for i in items],
        [naive_utc(i.at) for i in items],
        [i.subject for i in items],
        [i.subject_id for i in items],
        [",".join(i.owners) for i in items],
        [i.data for i in items],
    ]


def taken_since(conn: Conn, mark: int) -> list[Outgoing]:
    """The events ``conn``'s transaction emitted since its outbox held ``mark`` of them,
    taken out of it to be written ``along`` with a statement (a savepoint begun before
    ``mark`` still undoes them with that statement)."""
    if conn.outbox is None:
        return []
    taken = conn.outbox[mark:]
    del conn.outbox[mark:]
    return taken


def along(conn: Conn, items: Sequence[Outgoing], *, first: int) -> tuple[str, list[Any]]:
    """``items`` as WITH clauses for a statement of the caller's in ``conn``'s transaction
    (PostgreSQL), their parameters from ``$first`` on: the hottest write (a booking) writes
    its event in its own statement. The commit has them numbered as any others."""
    conn.wrote_events = True
    return _WRITE_CLAUSES.format(*range(first, first + 6)), _columns(items)


async def flush(conn: Conn, items: Sequence[Outgoing], numbering: Numbering | None) -> None:
    """Write ``items`` in ``conn``'s transaction, as its last statements; on PostgreSQL,
    have ``numbering`` number them (and any written ``along``) once it has committed."""
    if conn.dialect == "postgresql":
        if items:
            await conn.execute(_WRITE_PG, *_columns(items))
        if numbering is not None:
            conn.after_commit(numbering.after_commit)
        return
    for item in items:
        row_id = await conn.fetchval(
            _INSERT_EVENT, item.type, item.at, item.subject, item.subject_id, item.data
        )
        await conn.executemany(_INSERT_RECIPIENT, [(owner, row_id) for owner in item.owners])
    await conn.notify(CHANNEL, payload([o for item in items for o in item.owners]))


class Numbering:
    """One process's numbering (PostgreSQL): at most one round at a time; a writer that
    committed while one runs has it go round once more, and waits for it."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._running: asyncio.Future[None] | None = None
        self._again = False

    async def after_commit(self, _store: Writer) -> None:
        if self._running is not None:
            self._again = True
            await asyncio.shield(self._running)
            return
        self._running = asyncio.get_running_loop().create_future()
        try:
            await self.rounds()
        finally:
            running, self._running = self._running, None
            running.set_result(None)

    async def rounds(self) -> None:
        """Number what is waiting, batch after batch, unless another process is at it."""
        while True:
            self._again = False
            async with self._store.read() as conn:  # one statement: its own transaction
                done = await conn.fetchrow(_NUMBER)
            if (done is None or done["events"] < BATCH) and not self._again:
                return


async def keep_numbering(
    store: Any, numbering: Numbering, every: float = LOOK_EVERY_SECONDS
) -> None:
    """Look for events left unnumbered (their writer found another process numbering, which
    had already taken its batch), as long as the process serves."""
    while True:
        await asyncio.sleep(every)
        try:
            async with store.read() as conn:
                waiting = await conn.fetchrow(_ANY_WAITING)
            if waiting is not None:
                await numbering.rounds()
        except Exception as exc:  # the database away: tried again on the next look
            log.warning("numbering events failed: %s", exc)
