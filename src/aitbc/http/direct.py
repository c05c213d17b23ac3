"""The hottest reads, dispatched straight to their endpoint function.

A GET endpoint declared as ``async def endpoint(request: Request) -> Response`` (it reads its
query, headers and path parameters itself, so FastAPI has nothing to solve) is called here
directly, skipping the router's per-request work: matching the route table, the exception
and exit-stack layers, and the request-response wrappers. That work is most of what a list
request costs besides its query.

Everything else is as through the router: the same function answers, the outer middleware
(metrics, the request guard) sees the same request with ``scope["route"]`` set, and an
exception goes to the same handler the app registered for its type. Only paths that the
router would give the same route are taken: a literal path of the route, or, for a route
ending in one ``{parameter}``, one more path segment that no literal GET route claims. The
OpenAPI document is untouched: the route stays registered as it was."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from inspect import isawaitable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class DirectReads:
    def __init__(self, app: ASGIApp, *, owner: FastAPI, endpoints: Iterable[Endpoint]) -> None:
        self.app = app
        self.owner = owner
        self.wanted = set(endpoints)
        self.exact: dict[str, APIRoute] = {}
        self.under: dict[str, tuple[APIRoute, str]] = {}  # prefix -> (route, parameter)
        self.literal: set[str] = set()
        self.ready = False

    def _prepare(self) -> None:
        """Read the route table once, after every route has been included."""
        for route in self.owner.routes:
            if not isinstance(route, APIRoute) or "GET" not in (route.methods or ()):
                continue
            if "{" not in route.path:
                self.literal.add(route.path)
            if route.endpoint not in self.wanted:
                continue
            if "{" not in route.path:
                self.exact.setdefault(route.path, route)
                continue
            prefix, _, last = route.path.rpartition("/")
            if "{" not in prefix and last.startswith("{") and last.endswith("}"):
                self.under.setdefault(prefix + "/", (route, last[1:-1].split(":")[0]))
        self.ready = True

    def _match(self, path: str) -> tuple[APIRoute, dict[str, Any]] | None:
        route = self.exact.get(path)
        if route is not None:
            return route, {}
        prefix, _, segment = path.rpartition("/")
        found = self.under.get(prefix + "/")
        if found is None or not segment or path in self.literal:
            return None
        return found[0], {found[1]: segment}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if not self.ready:
            self._prepare()
        path, root = scope["path"], scope.get("root_path", "")
        matched = self._match(path[len(root) :] if root and path.startswith(root) else path)
        if matched is None:
            await self.app(scope, receive, send)
            return
        route, path_params = matched
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = path_params
        request = Request(scope, receive, send)
        try:
            response: Response = await route.endpoint(request)
        except Exception as exc:
            response = await self._handled(request, exc)
        await response(scope, receive, send)

    async def _handled(self, request: Request, exc: Exception) -> Response:
        """The app's own handler for the exception's type (the nearest in its MRO); an
        exception without one goes on up, as it would from the router."""
        handlers = self.owner.exception_handlers
        for kind in type(exc).__mro__:
            handler = handlers.get(kind)
            if handler is not None:
                answer = handler(request, exc)
                response: Response = await answer if isawaitable(answer) else answer
                return response
        raise exc
