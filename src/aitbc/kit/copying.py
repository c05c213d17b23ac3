"""A value from another that names its fields alike: a public schema from a domain value, or
a domain value (a dataclass) from a request schema. The fields both name alike are copied,
the rest given.

A schema's ``of`` then says only what differs from its domain value (a field under another
name, a figure worked out), and a field added to both is shown without another line. Money
follows the house rule: a schema's ``price`` is the value's ``price_units`` in tokens. A
field the value does not have keeps its default; a required one that is missing is refused
(by validation, or by the dataclass)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any, TypeVar

from pydantic import BaseModel

from aitbc.kit.money import from_units

T = TypeVar("T")
_NOTHING = object()


def _field_names(cls: type[Any]) -> Iterable[str]:
    if issubclass(cls, BaseModel):
        return cls.model_fields
    return [f.name for f in fields(cls)]


def copied(cls: type[T], source: object, **given: Any) -> T:
    values: dict[str, Any] = {}
    for name in _field_names(cls):
        if name in given:
            continue
        value = getattr(source, name, _NOTHING)
        if value is _NOTHING:
            units: Any = getattr(source, name + "_units", _NOTHING)
            if units is _NOTHING:
                continue
            value = None if units is None else from_units(units)
        values[name] = value
    return cls(**values, **given)
