"""A public schema from a domain value (``copied``), or a domain value from a request schema
(``built``): the fields both name alike are copied, the rest given.

A schema's ``of`` then says only what differs from its domain value (a field under another
name, a figure worked out), and a field added to both is shown without another line. Money
follows the house rule: a schema's ``price`` is the value's ``price_units`` in tokens. A
field the value does not have keeps the schema's default; validation refuses a required one
that is missing."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from aitbc.kit.money import from_units

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
_NOTHING = object()


def copied(cls: type[M], source: object, **given: Any) -> M:
    values: dict[str, Any] = {}
    for name in cls.model_fields:
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


def built(cls: type[T], source: object, **given: Any) -> T:
    """A domain value (a dataclass) from a request schema that names its fields alike: each
    field is ``given`` or the source's attribute of the same name. A field that is neither
    is an error at once, never a default silently kept (a renamed field cannot be missed)."""
    names = [f.name for f in fields(cast(Any, cls)) if f.init and f.name not in given]
    missing = [name for name in names if not hasattr(source, name)]
    if missing:
        raise TypeError(f"{type(source).__name__} does not name {missing} of {cls.__name__}")
    return cls(**{name: getattr(source, name) for name in names}, **given)
