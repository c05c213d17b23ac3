"""The error hierarchy of the domain: what went wrong, in words and a machine-readable code.
The HTTP layer (``aitbc.http.errors``) decides the status each kind is answered with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class AppError(Exception):
    """A refusal the caller can act on: a machine-readable ``code`` and a sentence."""

    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class Unauthorized(AppError):
    code = "unauthorized"


class PaymentRequired(AppError):
    code = "insufficient_funds"


class Forbidden(AppError):
    code = "forbidden"


class NotFound(AppError):
    code = "not_found"


class Conflict(AppError):
    code = "conflict"


class TooEarly(AppError):
    code = "too_early"


class Invalid(AppError):
    code = "invalid"


class InvalidFields(Invalid):
    """Input refused field by field, as request validation reports it: ``problems`` holds
    ``{"loc": (...), "msg": "..."}`` entries."""

    code = "validation_error"

    def __init__(self, problems: Sequence[Mapping[str, Any]]) -> None:
        self.problems = list(problems)
        super().__init__(describe(self.problems))


def describe(problems: Sequence[Mapping[str, Any]]) -> str:
    """The first few problems as ``where: what``; "body" is left out of the place."""
    parts = []
    for problem in problems[:5]:
        loc = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts)
