"""The output options, accepted before the sub-command (global), after it, and between group
names (``aitbc marketplace -o json gpu list``): the one given last on the command line wins."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

FORMATS = ("table", "json", "yaml")
NO_OUTPUT_COMMANDS = frozenset({"serve", "db", "run"})  # commands that print no result


def _set(attribute: str) -> Any:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            setattr(ctx.find_root().obj, attribute, value)

    return callback


def output_options() -> list[click.Option]:
    return [
        click.Option(
            ["--output", "-o"],
            type=click.Choice(FORMATS),
            default=None,
            expose_value=False,
            callback=_set("output"),
            help="Output format (same as the global --output).",
        ),
        click.Option(
            ["--columns"],
            default=None,
            expose_value=False,
            callback=_set("columns"),
            help="Table columns, comma-separated, or 'all'.",
        ),
        click.Option(
            ["--quiet", "-q"],
            is_flag=True,
            default=False,
            expose_value=False,
            callback=_set("quiet"),
            help="Print only ids, one a line.",
        ),
    ]


def _printing(group: click.Group) -> Iterable[click.Command]:
    """Every command under ``group`` that prints a result, and every group on the way."""
    for command in group.commands.values():
        if command.name in NO_OUTPUT_COMMANDS:
            continue
        if isinstance(command, click.Group):
            yield from _printing(command)
        yield command


def attach_output_options_to(top: click.Command) -> None:
    """Give a command of the root, and every command under it that prints a result (and
    every group above one), the output options after its name too."""
    if top.name in NO_OUTPUT_COMMANDS:
        return
    below = list(_printing(top)) if isinstance(top, click.Group) else []
    for command in [*below, top]:
        taken = {opt for param in command.params for opt in param.opts}
        command.params.extend(
            option for option in output_options() if not taken.intersection(option.opts)
        )
