"""SQL written once with ``$1``-style parameters and run on every backend.

The text is portable SQL; the few differences are translated here, once per statement:
SQLite gets ``?1`` parameters and no row-lock clauses (its write transactions hold the whole
database), psycopg gets ``%(p1)s`` parameters. A statement that must differ more than that
names its PostgreSQL text explicitly."""

from __future__ import annotations

import re

_PARAM = re.compile(r"\$(\d+)")
_ROW_LOCK = re.compile(r"\bFOR UPDATE(?: OF \w+)?(?: SKIP LOCKED| NOWAIT)?", re.IGNORECASE)


def _squeeze(text: str) -> str:
    return " ".join(text.split())


class Query:
    __slots__ = ("_pyformat", "postgresql", "sqlite")

    def __init__(self, text: str, *, postgresql: str | None = None) -> None:
        portable = _squeeze(text)
        self.postgresql = _squeeze(postgresql) if postgresql is not None else portable
        self.sqlite = _PARAM.sub(r"?\1", _ROW_LOCK.sub("", portable)).strip()
        self._pyformat: str | None = None

    @property
    def pyformat(self) -> str:
        """The PostgreSQL text for psycopg (the ORM session's driver)."""
        if self._pyformat is None:
            self._pyformat = _PARAM.sub(r"%(p\1)s", self.postgresql.replace("%", "%%"))
        return self._pyformat

    def __repr__(self) -> str:
        return f"Query({self.postgresql!r})"
