"""Rows as records: a dataclass built from a row with a column for each of its fields.

What a column holds is read by the field's type, the same on both databases: a time as an
aware UTC ``datetime`` (SQLite keeps text), a flag as ``bool`` (SQLite keeps 0 or 1), a list
or mapping from its JSON (an absent one as empty unless the field allows None). Other
values pass as they are; a field the row does not hold, or that wants another reading, is
given by the caller."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any, Self, TypeVar

from aitbc.store.conn import Row
from aitbc.store.values import as_json, as_time, maybe_time

R = TypeVar("R")
Reader = Callable[[Any], Any] | None


def record(cls: type[R], row: Row, **given: Any) -> R:
    """``cls`` from ``row``: each field not ``given`` from the column of its name."""
    readers = _READERS.get(cls) or _learn(cls)
    values = {
        name: row[name] if read is None else read(row[name])
        for name, read in readers
        if name not in given
    }
    return cls(**values, **given)


def _a_list(value: Any) -> list[Any]:
    return list(as_json(value) or [])


def _a_mapping(value: Any) -> dict[str, Any]:
    return dict(as_json(value) or {})


_BY_TYPE: dict[Any, Reader] = {
    datetime: as_time,
    datetime | None: maybe_time,
    bool: bool,
    list: _a_list,
    dict: _a_mapping,
}


_READERS: dict[type, tuple[tuple[str, Reader], ...]] = {}


def _learn(cls: type) -> tuple[tuple[str, Reader], ...]:
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    readers = tuple((f.name, _reader(hints[f.name])) for f in fields if f.init)
    _READERS[cls] = readers
    return readers


def _reader(hint: Any) -> Reader:
    if hint in _BY_TYPE:
        return _BY_TYPE[hint]
    origin = typing.get_origin(hint)
    if origin in (list, dict):
        return _BY_TYPE[origin]
    arms = typing.get_args(hint) if origin in (types.UnionType, typing.Union) else ()
    if any(typing.get_origin(arm) in (list, dict) for arm in arms):
        return as_json  # NULL stays None
    return None


class FromRow:
    """The base of a record that is read from a row by ``record``."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return record(cls, row)
