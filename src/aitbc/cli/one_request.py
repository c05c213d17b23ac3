"""Commands that are one request and its answer printed, made here from what they send: the
many alike (show, release, delist ... one object named by its id; a paged list to watch) are
each declared as a route, a view and a help text instead of being written out again."""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any, TypeVar

import click

from aitbc.cli.context import api
from aitbc.cli.http import segment
from aitbc.cli.output import emit
from aitbc.cli.views import View
from aitbc.cli.watch import Watching, watch_options

Command_ = TypeVar("Command_", bound=Callable[..., Any])


def on_id(
    name: str, route: str, view: View | None, *body: click.Option, help: str | None = None
) -> click.Command:
    """``NAME ID``: one request about the object ID names, its answer printed through
    ``view``. ``route`` is the method and the path, whose one placeholder names the argument
    (``"POST /v1/bookings/{booking_id}/release"``); the ``body`` options, if any, are the
    request's JSON body by their names (``--hours 2``: ``{"hours": 2}``), else it has none."""
    method, path = route.split(" ")
    (argument,) = [field for _, field, _, _ in string.Formatter().parse(path) if field]

    def send(**values: Any) -> None:
        where = path.format_map({argument: segment(values.pop(argument))})
        emit(api().request(method, where, json=values or None), view)

    params: list[click.Parameter] = [click.Argument([argument]), *body]
    return click.Command(name, callback=send, params=params, help=help)


def paging_options(*, limit: int, skipped: str) -> Callable[[Command_], Command_]:
    """``--limit`` (``limit`` by default) and ``--offset`` (``skipped``: what it skips), as
    every paged list takes them."""

    def decorate(command: Command_) -> Command_:
        offset = click.option("--offset", type=int, default=None, help=f"{skipped} to skip.")
        size = click.option("--limit", type=int, default=limit, show_default=True)
        return size(offset(command))

    return decorate


def watchable_list(name: str, path: str, view: View, *, skipped: str, help: str) -> click.Command:
    """``NAME [--limit N] [--offset N]``: a page of what ``GET path`` lists, or ``--watch``
    it."""

    @click.command(name, help=help)
    @paging_options(limit=50, skipped=skipped)
    @watch_options
    def command(limit: int, offset: int | None, watching: Watching) -> None:
        params = {"limit": limit, "offset": offset}
        watching.show(lambda: api().request("GET", path, params=params), view)

    return command
