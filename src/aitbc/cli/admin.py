from __future__ import annotations

import click

from aitbc.cli import numbers, views
from aitbc.cli.context import api
from aitbc.cli.http import segment
from aitbc.cli.one_request import on_id
from aitbc.cli.output import emit


@click.group()
def admin() -> None:
    """Administration (admin key)."""


@admin.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--role", type=click.Choice(["client", "miner", "admin"]), required=True)
@click.option("--owner-id", required=True, help="The client's or miner's id.")
def keys_create(role: str, owner_id: str) -> None:
    """Create a key; its secret is shown once."""
    made = api().request(
        "POST", "/v1/admin/api-keys", json={"role": role, "owner_id": owner_id}, expect=(201,)
    )
    click.echo("The key is shown only now: store it (the server keeps only its hash).", err=True)
    emit(made, views.API_KEY_MADE)


@keys.command("list")
@click.option("--role", type=click.Choice(["client", "miner", "admin"]), default=None)
@click.option("--owner-id", default=None)
@click.option("--limit", type=int, default=100, show_default=True)
def keys_list(role: str | None, owner_id: str | None, limit: int) -> None:
    """List keys (without secrets)."""
    emit(
        api().request(
            "GET", "/v1/admin/api-keys", params={"role": role, "owner_id": owner_id, "limit": limit}
        ),
        views.API_KEY,
    )


keys.add_command(
    on_id(
        "revoke",
        "DELETE /v1/admin/api-keys/{key_id}",
        views.API_KEY,
        help="Revoke a key; effective on its next request.",
    )
)


@admin.command("deposit")
@click.argument("owner_id")
@click.argument("amount", type=numbers.AMOUNT)
@click.option("--idempotency-key", default=None)
@click.option(
    "--create",
    is_flag=True,
    default=False,
    help="Open an account for an owner the coordinator does not know yet.",
)
def deposit(owner_id: str, amount: str, idempotency_key: str | None, create: bool) -> None:
    """Credit OWNER_ID's account with AMOUNT tokens."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    emit(
        api().request(
            "POST",
            f"/v1/admin/accounts/{segment(owner_id)}/deposit",
            json={"amount": amount},
            params={"create": "true" if create else None},
            headers=headers,
            expect=(201,),
        ),
        views.DEPOSIT,
    )


@admin.group("reviews")
def admin_reviews() -> None:
    """Review moderation."""


@admin_reviews.command("flagged")
@click.option("--include-hidden", is_flag=True, default=False)
def reviews_flagged(include_hidden: bool) -> None:
    """Flagged reviews, most flagged first."""
    params = {"include_hidden": "true" if include_hidden else None}
    emit(api().request("GET", "/v1/admin/reviews/flagged", params=params), views.REVIEW_ADMIN)


for command in (
    on_id(
        "hide",
        "POST /v1/admin/reviews/{review_id}/hide",
        views.REVIEW_ADMIN,
        help="Hide a review from the public list and the aggregates.",
    ),
    on_id(
        "restore",
        "POST /v1/admin/reviews/{review_id}/restore",
        views.REVIEW_ADMIN,
        help="Bring a hidden review back.",
    ),
):
    admin_reviews.add_command(command)


@admin.command("sync-offers")
def sync_offers() -> None:
    """Create or refresh offers from online miners' GPUs; close the rest."""
    emit(api().request("POST", "/v1/marketplace/sync-offers"))
