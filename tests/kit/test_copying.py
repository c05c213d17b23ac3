"""A domain value built from a request schema: every field named or given, none defaulted."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import BaseModel

from aitbc.kit.copying import built


@dataclass(frozen=True)
class Wanted:
    name: str
    price_units: int
    note: str | None = None


class Asked(BaseModel):
    name: str
    note: str | None = None
    price: int


def test_fields_named_alike_are_copied_and_the_rest_given() -> None:
    asked = Asked(name="a100", note="fast", price=3)

    assert built(Wanted, asked, price_units=asked.price * 10) == Wanted("a100", 30, "fast")


def test_a_field_the_source_does_not_name_is_an_error_not_its_default() -> None:
    class Renamed(BaseModel):
        name: str
        remark: str | None = None  # the domain calls it note

    with pytest.raises(TypeError, match=r"Renamed does not name \['note'\] of Wanted"):
        built(Wanted, Renamed(name="a100", remark="fast"), price_units=1)
