from __future__ import annotations

import click

from aitbc.cli.context import api
from aitbc.cli.output import emit


@click.group()
def bookings() -> None:
    """Your bookings."""


@bookings.command("list")
@click.option("--limit", type=int, default=50, show_default=True)
def list_bookings(limit: int) -> None:
    """List bookings, newest first."""
    emit(api().request("GET", "/v1/bookings", params={"limit": limit}))


@bookings.command("show")
@click.argument("booking_id")
def show(booking_id: str) -> None:
    """Show one booking."""
    emit(api().request("GET", f"/v1/bookings/{booking_id}"))


@bookings.command("extend")
@click.argument("booking_id")
@click.option("--hours", type=float, required=True)
def extend(booking_id: str, hours: float) -> None:
    """Add time to a booking."""
    emit(api().request("POST", f"/v1/bookings/{booking_id}/extend", json={"hours": hours}))


@bookings.command("release")
@click.argument("booking_id")
def release(booking_id: str) -> None:
    """End a booking early or cancel a reservation."""
    emit(api().request("POST", f"/v1/bookings/{booking_id}/release"))
