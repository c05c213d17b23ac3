"""``--watch``: fetch a result again and again and redraw it in place (rich Live) until
Ctrl-C; when stdout is not a terminal each refresh is printed after the last."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
from rich.console import Group
from rich.live import Live
from rich.text import Text

from aitbc.cli.numbers import FiniteFloat
from aitbc.cli.output import console, emit, plain_text, renderable
from aitbc.cli.views import View


def pause(seconds: float) -> None:
    time.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Watching:
    """What ``--watch``, ``--interval`` and ``--count`` asked for."""

    on: bool
    interval: float
    count: int | None

    def show(
        self,
        fetch: Callable[[], Any],
        view: View | None,
        *,
        first: Callable[[Any], None] | None = None,
    ) -> None:
        """Draw what ``fetch`` answers: again and again in place when watching, else once
        (after ``first`` has seen it)."""
        if self.on:
            watch(fetch, view, self.interval, self.count)
            return
        found = fetch()
        if first is not None:
            first(found)
        emit(found, view)


def watch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--watch``, ``--interval`` and ``--count``, handed to the command as one
    ``watching: Watching``."""

    @functools.wraps(command)
    def bundled(*args: Any, watching: bool, interval: float, count: int | None, **kw: Any) -> Any:
        return command(*args, watching=Watching(watching, interval, count), **kw)

    options = [
        click.option(
            "--count",
            type=click.IntRange(min=1),
            default=None,
            help="With --watch: stop after this many refreshes.",
        ),
        click.option(
            "--interval",
            type=FiniteFloat(0.1),
            default=2.0,
            show_default=True,
            help="With --watch: seconds between refreshes.",
        ),
        click.option(
            "--watch",
            "-w",
            "watching",
            is_flag=True,
            default=False,
            help="Refresh in place until Ctrl-C.",
        ),
    ]
    for option in options:
        bundled = option(bundled)
    return bundled


def _heading(interval: float, number: int) -> Text:
    now = datetime.now().strftime("%H:%M:%S")
    return Text(f"every {interval:g}s, refresh {number} at {now} (Ctrl-C stops)", style="dim")


def watch(fetch: Callable[[], Any], view: View | None, interval: float, count: int | None) -> None:
    state = click.get_current_context().find_root().obj
    if state.output != "table" or state.quiet:
        raise click.UsageError("--watch draws a table: use it without --output json|yaml/--quiet")
    out = console()
    columns = state.column_list()
    number = 0
    try:
        if out.is_terminal:
            with Live(console=out, auto_refresh=False) as live:
                while count is None or number < count:
                    number += 1
                    drawn = renderable(fetch(), view, columns, styled=True)
                    live.update(Group(_heading(interval, number), drawn), refresh=True)
                    if count is None or number < count:
                        pause(interval)
        else:
            while count is None or number < count:
                number += 1
                drawn = renderable(fetch(), view, columns, styled=False)
                click.echo(plain_text(Group(_heading(interval, number), drawn)))
                if count is None or number < count:
                    pause(interval)
    except KeyboardInterrupt:
        click.echo("stopped watching", err=True)
