"""Limits the server enforces, written into the OpenAPI document too, so clients and fuzzers
see them: decimal places of amounts and hours (pydantic checks them but leaves them out of
the JSON schema) and the range of times a client may send."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema


def _decimal_text(value: Any) -> Any:
    """A decimal sent as text must be written as the document's pattern shows: plain ASCII
    digits with an optional point (Python's Decimal would also take "1e5", "1_000", " 1",
    "-0" and other scripts' digits)."""
    if isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value) is None:
        raise ValueError("Write the number as digits with an optional decimal point")
    return value


_PLAIN_DECIMAL = re.compile(r"\+?[0-9]+(\.[0-9]+)?")


def float_forms(places: int) -> list[str]:
    """How Python writes a float below 0.0001 that has at most ``places`` decimals
    (``1e-05``, ``1.5e-05``): the deployed CLI sends query amounts as ``str(float)``."""
    return [
        rf"[1-9](?:\.[0-9]{{1,{places - exponent}}})?e-0{exponent}"
        if places > exponent
        else rf"[1-9]e-0{exponent}"
        for exponent in range(5, min(places, 9) + 1)
    ]


@dataclass(frozen=True, slots=True)
class _QueryText:
    """A query's amount: plain decimal text, or a small float as Python writes it."""

    float_text: re.Pattern[str]

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str) and self.float_text.fullmatch(value):
            return value
        return _decimal_text(value)


def _digits_below(limit: Decimal) -> int:
    """k for a limit of 10**k: the digits a whole part below it may have."""
    exponent = limit.normalize().as_tuple()
    if exponent.digits != (1,) or not isinstance(exponent.exponent, int):
        raise ValueError(f"a decimal's maximum must be a power of ten to be a pattern: {limit}")
    return exponent.exponent


def decimal_pattern(
    places: int, *, positive: bool, below: int, top: bool, floats: bool = False
) -> str:
    """A regular expression for decimal text with at most ``places`` decimals, greater than
    zero (``positive``) or at least zero, whose whole part has at most ``below`` significant
    digits, or (``top``) exactly 10**below; with ``floats``, small floats as Python writes
    them too (``float_forms``)."""
    fraction = rf"[0-9]{{1,{places}}}"
    nonzero_fraction = "|".join(
        "0" * zeros + rf"[1-9][0-9]{{0,{places - 1 - zeros}}}" for zeros in range(places)
    )
    whole = rf"0*[1-9][0-9]{{0,{below - 1}}}(\.{fraction})?"
    small = rf"0+\.(?:{nonzero_fraction})" if positive else rf"0+(\.{fraction})?"
    choices = [whole, small]
    if top:
        choices.append(rf"0*1{'0' * below}(\.0{{1,{places}}})?")
    if floats:
        choices += float_forms(places)
    return rf"^\+?(?:{'|'.join(choices)})$"


@dataclass(frozen=True, slots=True)
class DecimalPlaces:
    """A decimal sent as a JSON number or as text, with at most ``places`` decimals and at
    most ``digits`` digits in all; its bounds come before it in the ``Annotated``. The
    document says exactly what is accepted: ``multipleOf`` and the bounds for a number, a
    pattern for text (built from the same bounds); text in any other form is refused."""

    places: int
    digits: int
    text_only: bool = False  # a query parameter: text on the wire, so text in the document

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        check = _decimal_text
        if self.text_only:
            floats = "|".join(float_forms(self.places))
            check = _QueryText(re.compile(rf"\+?(?:{floats})")) if floats else check
        return core_schema.no_info_before_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema_: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(schema_))
        branches = schema.get("anyOf", [schema])
        number = next(b for b in branches if b.get("type") == "number")
        number["multipleOf"] = float(Decimal(1).scaleb(-self.places))
        if "maximum" in number:
            below, top = _digits_below(Decimal(str(number["maximum"]))), True
        else:  # the digits bound it: a whole part of at most digits - places digits
            below, top = self.digits - self.places, False
            number["exclusiveMaximum"] = float(10**below)
        positive = number.get("exclusiveMinimum") == 0
        if not positive and number.get("minimum") != 0:
            raise ValueError("a decimal's lower bound must be > 0 or >= 0 to be a pattern")
        pattern = decimal_pattern(
            self.places, positive=positive, below=below, top=top, floats=self.text_only
        )
        if self.text_only:
            return {"type": "string", "pattern": pattern}
        for branch in branches:
            if branch.get("type") == "string":
                branch["pattern"] = pattern
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


# Money (18 digits in all) and hours (12), with six decimals.
MONEY_TEXT = DecimalPlaces(6, 18)
HOURS_TEXT = DecimalPlaces(6, 12)
MONEY_QUERY = DecimalPlaces(6, 18, text_only=True)
