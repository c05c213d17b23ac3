from __future__ import annotations

import sys

import click

from aitbc.cli.http import Api


def api() -> Api:
    state = click.get_current_context().find_root().obj
    result: Api = state.api()
    return result


def ask(question: str, *, doing: str) -> None:
    """Ask before ``doing`` something that spends or cannot be undone: go on only on a yes;
    where nobody can answer (no terminal), refuse and say to pass --yes instead."""
    if not sys.stdin.isatty():
        raise click.UsageError(f"nobody to ask here: add --yes to {doing}")
    click.confirm(question, abort=True, err=True)
