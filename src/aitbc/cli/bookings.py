from __future__ import annotations

import click

from aitbc.cli import numbers, views
from aitbc.cli.context import api
from aitbc.cli.http import segment
from aitbc.cli.one_request import on_id, watchable_list
from aitbc.cli.output import emit
from aitbc.cli.watch import Watching, watch_options


def _hours() -> click.Option:
    """What ``extend`` adds, sent as ``{"hours": H}``."""
    return click.Option(["--hours"], type=numbers.HOURS, required=True)


@click.group()
def bookings() -> None:
    """Your bookings."""


for command in (
    watchable_list(
        "list",
        "/v1/bookings",
        views.BOOKING,
        skipped="Bookings",
        help="List bookings, newest first (or --watch them).",
    ),
    on_id(
        "extend",
        "POST /v1/bookings/{booking_id}/extend",
        views.BOOKING,
        _hours(),
        help="Add time to a booking.",
    ),
    on_id(
        "release",
        "POST /v1/bookings/{booking_id}/release",
        views.BOOKING,
        help="End a booking early or cancel a reservation.",
    ),
):
    bookings.add_command(command)


@bookings.command("show")
@click.argument("booking_id")
@watch_options
def show(booking_id: str, watching: Watching) -> None:
    """Show one booking (or --watch it)."""
    watching.show(
        lambda: api().request("GET", f"/v1/bookings/{segment(booking_id)}"), views.BOOKING
    )


@bookings.command("change-bid")
@click.argument("booking_id")
@click.option("--bid", type=numbers.PRICE_TEXT, required=True, help="The new, higher bid.")
def change_bid(booking_id: str, bid: str) -> None:
    """Raise an interruptible booking's bid (the rest of its time is paid at it)."""
    emit(
        api().request(
            "POST", f"/v1/bookings/{segment(booking_id)}/bid", json={"bid_per_hour": bid}
        ),
        views.BOOKING,
    )


@bookings.group("gang")
def gang() -> None:
    """Gangs: GPUs booked together (`aitbc marketplace book-best --count N`), released and
    extended as a whole."""


for command in (
    on_id(
        "show",
        "GET /v1/gangs/{gang_id}",
        views.GANG,
        help="Show a gang: its totals, and one line per GPU.",
    ),
    on_id(
        "release",
        "POST /v1/gangs/{gang_id}/release",
        views.GANG,
        help="End every booking of a gang early (unused time refunded).",
    ),
    on_id(
        "extend",
        "POST /v1/gangs/{gang_id}/extend",
        views.GANG,
        _hours(),
        help="Add time to every booking of a gang (or to none, when one GPU is not free).",
    ),
):
    gang.add_command(command)
