"""Limits the server enforces, written into the OpenAPI document too, so clients and fuzzers
see them: decimal places of amounts and hours (pydantic checks them but leaves them out of
the JSON schema) and the range of times a client may send."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


@dataclass(frozen=True, slots=True)
class DecimalPlaces:
    """At most ``places`` decimals, as a number (``multipleOf``) or a string (``pattern``)."""

    places: int

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") == "number":
                branch["multipleOf"] = float(Decimal(1).scaleb(-self.places))
            elif branch.get("type") == "string":
                branch["pattern"] = rf"^\+?\d+(\.\d{{1,{self.places}}})?$"
        return schema


@dataclass(frozen=True, slots=True)
class Note:
    """Extra JSON-schema keywords for a type (``x-`` extensions and a description)."""

    keywords: tuple[tuple[str, Any], ...]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        schema.update(dict(self.keywords))
        return schema


SIX_PLACES = DecimalPlaces(6)
