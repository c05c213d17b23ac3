from __future__ import annotations

import click

from aitbc.cli import views
from aitbc.cli.context import api
from aitbc.cli.output import emit


@click.group()
def account() -> None:
    """Your balance and ledger."""


@account.command("balance")
def balance() -> None:
    """Balance and escrow."""
    emit(api().request("GET", "/v1/accounts/me"), views.ACCOUNT)


@account.command("ledger")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=None, help="Entries to skip.")
def ledger(limit: int, offset: int | None) -> None:
    """Ledger entries, newest first."""
    params = {"limit": limit, "offset": offset}
    emit(api().request("GET", "/v1/accounts/me/ledger", params=params), views.LEDGER)
