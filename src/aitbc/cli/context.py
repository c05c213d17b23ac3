from __future__ import annotations

import click

from aitbc.cli.http import Api


def api() -> Api:
    state = click.get_current_context().find_root().obj
    result: Api = state.api()
    return result
