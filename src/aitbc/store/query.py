"""SQL written once with ``$1``-style parameters and run on every backend.

The text is portable SQL; the few differences are translated here, once per statement:
SQLite gets ``?1`` parameters and no row-lock clauses (its write transactions hold the whole
database). A statement that must differ more than that
names its PostgreSQL text explicitly.

A statement run for many rows (``executemany``) may name an ``arrays`` form for PostgreSQL:
one statement whose parameters are the columns as arrays, unnested on the server, so a batch
of rows costs one round trip and one statement instead of one per row. SQLite, in-process,
runs the row statement once per row."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from aitbc.store.lru import LRU

_PARAM = re.compile(r"\$(\d+)")
_ROW_LOCK = re.compile(r"\bFOR UPDATE(?: OF \w+)?(?: SKIP LOCKED| NOWAIT)?", re.IGNORECASE)


def _squeeze(text: str) -> str:
    return " ".join(text.split())


class Query:
    __slots__ = ("arrays", "postgresql", "sqlite")

    def __init__(
        self, text: str, *, postgresql: str | None = None, arrays: str | None = None
    ) -> None:
        portable = _squeeze(text)
        self.postgresql = _squeeze(postgresql) if postgresql is not None else portable
        self.sqlite = _PARAM.sub(r"?\1", _ROW_LOCK.sub("", portable)).strip()
        self.arrays = None if arrays is None else Query.postgresql_only(arrays)

    @classmethod
    def postgresql_only(cls, text: str) -> Query:
        """A statement with no SQLite form (its caller does the same work otherwise)."""
        query = cls(text)
        # Fails with "no such table: a PostgreSQL-only statement ran on SQLite".
        query.sqlite = 'SELECT * FROM "a PostgreSQL-only statement ran on SQLite"'
        return query

    def __repr__(self) -> str:
        return f"Query({self.postgresql!r})"


_BUILT: LRU[tuple[str, str | None], Query] = LRU(512)


def built(text: str, *, postgresql: str | None = None) -> Query:
    """The Query for text assembled at run time (a filter combination, a list of n values),
    kept so each distinct text is translated once."""
    query = _BUILT.get((text, postgresql))
    if query is None:
        query = _BUILT[text, postgresql] = Query(text, postgresql=postgresql)
    return query


def insert_into(table: str, columns: Sequence[str]) -> Query:
    """``INSERT`` of the named columns, their values ``$1``... in that order."""
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return Query(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})")


def update_by_id(table: str, columns: Sequence[str]) -> Query:
    """``UPDATE`` of the named columns (``$2``...) of the row whose id is ``$1``."""
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=2))
    return built(f"UPDATE {table} SET {sets} WHERE id = $1")


class Params:
    """A statement's parameters, numbered ($1, $2...) as they are added."""

    def __init__(self, *initial: Any) -> None:
        self.values = list(initial)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def add_all(self, values: Iterable[Any]) -> str:
        return ", ".join(self.add(value) for value in values)
