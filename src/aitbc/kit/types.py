"""Types shared by the request and response schemas."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict

from aitbc.kit.schema_notes import Note

# Times a client may send: years 2000 to 8999 as written (every database stores them), in
# ISO 8601 text; the document's pattern says the same.
TIME_PATTERN = "^[2-8][0-9]{3}-"
_WRITTEN_TIME = re.compile(TIME_PATTERN)


def _iso_text(value: Any) -> Any:
    if not isinstance(value, str) or _WRITTEN_TIME.match(value) is None:
        raise ValueError("must be an ISO 8601 time from the year 2000 to 8999, with its zone")
    return value


# A time given by a client: with a zone, from the year 2000 to 8999.
Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    Note(
        (
            ("pattern", TIME_PATTERN),
            ("description", "An ISO 8601 time with its zone, from the year 2000 to 8999"),
        )
    ),
]


def _json_integer(value: Any) -> Any:
    """An integer as JSON Schema reads one: 3 and 3.0 are, true and "3" are not."""
    if isinstance(value, bool | str):
        raise ValueError("Input should be a valid integer")
    return value


# A whole number in a JSON body: what the OpenAPI document's ``integer`` admits, exactly
# (pydantic alone would take true and "3", and its strict mode would refuse 3.0). Inside an
# optional type it goes after the bounds (``Annotated[int, Field(ge=0), JSON_INTEGER]``), or
# the document loses them.
JSON_INTEGER = BeforeValidator(_json_integer)
JsonInt = Annotated[int, JSON_INTEGER]


class RequestModel(BaseModel):
    """What a client sends, a request body or a part of one: a field it does not name is
    refused (422), so a misspelt option is an error, never a default silently kept."""

    model_config = ConfigDict(extra="forbid")
