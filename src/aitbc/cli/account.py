from __future__ import annotations

import click

from aitbc.cli import numbers, views
from aitbc.cli.context import api
from aitbc.cli.one_request import paging_options
from aitbc.cli.output import emit


@click.group()
def account() -> None:
    """Your balance and ledger."""


@account.command("balance")
def balance() -> None:
    """Balance and escrow."""
    emit(api().request("GET", "/v1/accounts/me"), views.ACCOUNT)


@account.command("ledger")
@paging_options(limit=50, skipped="Entries")
def ledger(limit: int, offset: int | None) -> None:
    """Ledger entries, newest first."""
    params = {"limit": limit, "offset": offset}
    emit(api().request("GET", "/v1/accounts/me/ledger", params=params), views.LEDGER)


@account.command("alert")
@click.option("--below", type=numbers.AMOUNT, default=None, help="Alert below this balance.")
@click.option("--off", is_flag=True, help="No alert.")
def alert(below: str | None, off: bool) -> None:
    """Show or set your low-balance alert: an account.low_balance event (aitbc events, your
    webhooks) once your balance falls below it."""
    path = "/v1/accounts/me/low-balance-alert"
    if off and below is not None:
        raise click.UsageError("give --below or --off, not both")
    if off or below is not None:
        emit(api().request("PUT", path, json={"below": None if off else below}), views.ALERT)
    else:
        emit(api().request("GET", path), views.ALERT)
