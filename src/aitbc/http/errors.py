"""Errors as HTTP responses: the one handler that renders every refusal as
``{"error": "<machine_code>", "detail": "<human sentence>"}`` with its status."""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from aitbc.errors import (
    AppError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PaymentRequired,
    TooEarly,
    Unauthorized,
    describe,
)

log = logging.getLogger("aitbc.errors")
# Where guard.py notes why a body was not acceptable JSON (answered here, after the key check).
BODY_PROBLEM = "aitbc.body_problem"


class ErrorBody(BaseModel):
    error: str
    detail: str


# The status each kind of refusal is answered with (a subclass answers as its kind).
STATUS: dict[type[AppError], int] = {
    Unauthorized: 401,
    PaymentRequired: 402,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooEarly: 425,
    Invalid: 422,
}


def status_of(exc: AppError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the error shape for each status; 422
    (bad input) can happen on every route."""
    return {status: {"model": ErrorBody} for status in sorted({*statuses, 422})}


MAX_ECHO = 64  # characters of a caller's value repeated in an error
MAX_DETAIL = 500
_QUOTED = re.compile("'([^']{" + str(MAX_ECHO + 1) + ",})'")


def _shortened(detail: str) -> str:
    """The sentence with each quoted value over MAX_ECHO characters cut (an error never
    echoes a 10,000-character input back), and at most MAX_DETAIL characters."""
    detail = _QUOTED.sub(lambda m: f"'{m.group(1)[: MAX_ECHO - 1]}…'", detail)
    return detail if len(detail) <= MAX_DETAIL else detail[: MAX_DETAIL - 1] + "…"


def _body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": _shortened(detail)}


def _allowed(request: Request) -> str:
    """Every method some route serves at this path (the router names only the first such
    route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(_body(exc.code, exc.detail), status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problem = request.scope.get(BODY_PROBLEM)
        if problem is not None:  # the body was not acceptable JSON (see guard.py)
            return JSONResponse(_body("invalid_json", problem), 422)
        return JSONResponse(_body("validation_error", describe(exc.errors())), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed(request)}
        return JSONResponse(
            _body(code, str(exc.detail)), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # Reached only when a database constraint caught what the service checks missed
        # (a concurrent writer); the transaction was rolled back, nothing changed.
        log.info("integrity conflict: %s", exc.orig)
        return JSONResponse(
            _body("conflict", "The request conflicts with a concurrent change; retry."), 409
        )

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # Input the database itself refuses (the schemas should have caught it first).
        log.info("data error: %s", exc.orig)
        return JSONResponse(_body("validation_error", "The database refused a value."), 422)

    @app.exception_handler(OperationalError)
    async def _operational(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc.orig)
        return JSONResponse(
            _body("database_unavailable", "The database is busy or unreachable; retry."),
            503,
        )

    @app.exception_handler(sqlite3.IntegrityError)
    @app.exception_handler(asyncpg.IntegrityConstraintViolationError)
    async def _store_integrity(_: Request, exc: Exception) -> JSONResponse:
        log.info("integrity conflict: %s", exc)
        return JSONResponse(
            _body("conflict", "The request conflicts with a concurrent change; retry."), 409
        )

    @app.exception_handler(asyncpg.DataError)
    async def _store_data(_: Request, exc: Exception) -> JSONResponse:
        log.info("data error: %s", exc)
        return JSONResponse(_body("validation_error", "The database refused a value."), 422)

    @app.exception_handler(sqlite3.OperationalError)
    @app.exception_handler(asyncpg.PostgresError)
    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(TimeoutError)
    async def _store_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse(
            _body("database_unavailable", "The database is busy or unreachable; retry."),
            503,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(_body("internal_error", "An unexpected error occurred."), 500)
