from __future__ import annotations

import click

from aitbc.cli import numbers, views
from aitbc.cli.context import api
from aitbc.cli.http import segment
from aitbc.cli.output import emit
from aitbc.cli.watch import Watching, watch_options


@click.group()
def bookings() -> None:
    """Your bookings."""


@bookings.command("list")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=None, help="Bookings to skip.")
@watch_options
def list_bookings(limit: int, offset: int | None, watching: Watching) -> None:
    """List bookings, newest first (or --watch them)."""
    params = {"limit": limit, "offset": offset}
    watching.show(lambda: api().request("GET", "/v1/bookings", params=params), views.BOOKING)


@bookings.command("show")
@click.argument("booking_id")
@watch_options
def show(booking_id: str, watching: Watching) -> None:
    """Show one booking (or --watch it)."""
    watching.show(
        lambda: api().request("GET", f"/v1/bookings/{segment(booking_id)}"), views.BOOKING
    )


@bookings.command("extend")
@click.argument("booking_id")
@click.option("--hours", type=numbers.HOURS, required=True)
def extend(booking_id: str, hours: float) -> None:
    """Add time to a booking."""
    emit(
        api().request("POST", f"/v1/bookings/{segment(booking_id)}/extend", json={"hours": hours}),
        views.BOOKING,
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


@bookings.command("release")
@click.argument("booking_id")
def release(booking_id: str) -> None:
    """End a booking early or cancel a reservation."""
    emit(api().request("POST", f"/v1/bookings/{segment(booking_id)}/release"), views.BOOKING)


@bookings.group("gang")
def gang() -> None:
    """Gangs: GPUs booked together (`aitbc marketplace book-best --count N`), released and
    extended as a whole."""


@gang.command("show")
@click.argument("gang_id")
def gang_show(gang_id: str) -> None:
    """Show a gang: its totals, and one line per GPU."""
    emit(api().request("GET", f"/v1/gangs/{segment(gang_id)}"), views.GANG)


@gang.command("release")
@click.argument("gang_id")
def gang_release(gang_id: str) -> None:
    """End every booking of a gang early (unused time refunded)."""
    emit(api().request("POST", f"/v1/gangs/{segment(gang_id)}/release"), views.GANG)


@gang.command("extend")
@click.argument("gang_id")
@click.option("--hours", type=numbers.HOURS, required=True)
def gang_extend(gang_id: str, hours: float) -> None:
    """Add time to every booking of a gang (or to none, when one GPU is not free)."""
    emit(
        api().request("POST", f"/v1/gangs/{segment(gang_id)}/extend", json={"hours": hours}),
        views.GANG,
    )
