"""Routing helpers: every endpoint is ``async`` (its database work is the store's), and its
docstring is its OpenAPI text; ``include_flat`` adds a router's routes without nesting."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import fastapi
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

__all__ = ["APIRouter", "include_flat"]


class DocumentedRoute(APIRoute):
    """A route whose endpoint's docstring gives its OpenAPI summary (the first paragraph, on
    one line) and description (the rest, if any). A route given a summary takes the whole
    docstring as its description; one given a description (even empty) keeps it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        described = kwargs.get("description")
        text = inspect.cleandoc(endpoint.__doc__ or "")
        if kwargs.get("summary") is None:
            first, _, text = text.partition("\n\n")
            kwargs["summary"] = " ".join(first.split()) or None
        super().__init__(path, endpoint, **kwargs)
        # FastAPI's own rule for what it shows: the text before a form feed.
        self.description = (text if described is None else described).split("\f")[0].strip()


class APIRouter(fastapi.APIRouter):
    """FastAPI's router, with routes documented by their endpoints' docstrings."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("route_class", DocumentedRoute)
        super().__init__(**kwargs)


_COPIED = (
    "response_model",
    "status_code",
    "tags",
    "dependencies",
    "summary",
    "description",
    "response_description",
    "responses",
    "deprecated",
    "name",
    "methods",
    "operation_id",
    "response_class",
    "callbacks",
    "openapi_extra",
    "generate_unique_id_function",
)


def include_flat(
    app: fastapi.FastAPI,
    router: fastapi.APIRouter,
    *,
    prefix: str = "",
    include_in_schema: bool = True,
) -> None:
    """Put the router's routes on the application's own router, one level deep.

    ``FastAPI.include_router`` nests routers, and matching a request then costs time for every
    route of every router in front of the right one (about 110 µs per request behind a dozen
    routers, measured against a route on the application itself)."""
    for route in router.routes:
        if not isinstance(route, fastapi.routing.APIRoute):
            raise TypeError(f"only API routes can be included flat, not {route!r}")
    if not prefix and include_in_schema:
        app.router.routes.extend(router.routes)
    else:
        app.router.routes.extend(_moved(router, prefix, include_in_schema))


# By the router's identity (routers compare by their routes and cannot be hashed); the
# router is kept with its copies, so its identity is never reused.
_MOVED: dict[tuple[int, str, bool], tuple[fastapi.APIRouter, list[BaseRoute]]] = {}


def _moved(router: fastapi.APIRouter, prefix: str, include_in_schema: bool) -> list[BaseRoute]:
    """The router's routes under ``prefix``, built once a process: a route holds nothing of
    the application it serves, and building one (its parameters' validators) costs about a
    millisecond, which every application made in a test run would pay again."""
    key = (id(router), prefix, include_in_schema)
    if key not in _MOVED:
        _MOVED[key] = (router, _copied(router, prefix, include_in_schema))
    return _MOVED[key][1]


def _copied(router: fastapi.APIRouter, prefix: str, include_in_schema: bool) -> list[BaseRoute]:
    moved = APIRouter()
    for route in router.routes:
        assert isinstance(route, fastapi.routing.APIRoute)
        moved.add_api_route(
            prefix + route.path,
            route.endpoint,
            include_in_schema=include_in_schema and route.include_in_schema,
            **{name: getattr(route, name) for name in _COPIED},
        )
    return moved.routes
