from __future__ import annotations

import click

from aitbc.cli.context import api
from aitbc.cli.output import emit


@click.group()
def account() -> None:
    """Your balance and ledger."""


@account.command("balance")
def balance() -> None:
    """Balance and escrow."""
    emit(api().request("GET", "/v1/accounts/me"))


@account.command("ledger")
@click.option("--limit", type=int, default=50, show_default=True)
def ledger(limit: int) -> None:
    """Ledger entries, newest first."""
    emit(api().request("GET", "/v1/accounts/me/ledger", params={"limit": limit}))
