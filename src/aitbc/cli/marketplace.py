"""``aitbc marketplace``: GPUs (``gpu.py``), reviews (``reviews.py``), orders, pricing,
offers, statistics and bids."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote as quote_path

import click

from aitbc.cli import numbers, reviews, views
from aitbc.cli.chart import price_chart
from aitbc.cli.context import api
from aitbc.cli.gpu import gpu, rental
from aitbc.cli.output import console, emit, show
from aitbc.cli.output import renderable as drawn


@click.group()
def marketplace() -> None:
    """The GPU marketplace."""


marketplace.add_command(gpu)
for command in (
    reviews.reviews,
    reviews.review,
    reviews.edit_review,
    reviews.flag_review,
    reviews.rating_history,
):
    marketplace.add_command(command)


@marketplace.command("orders")
@click.option(
    "--status",
    type=click.Choice(["pending", "active", "completed", "released", "cancelled"]),
    default=None,
)
@click.option("--limit", type=int, default=10, show_default=True)
@click.option("--offset", type=int, default=None, help="Orders to skip.")
def orders(status: str | None, limit: int, offset: int | None) -> None:
    """List your orders."""
    params = {"limit": limit, "status": status, "offset": offset}
    emit(api().request("GET", "/v1/marketplace/orders", params=params), views.ORDER)


@marketplace.command("order")
@click.argument("order_id")
def order(order_id: str) -> None:
    """Show one order with its amounts and status history."""
    emit(api().request("GET", f"/v1/marketplace/orders/{order_id}"), views.ORDER)


@marketplace.command("pricing")
@click.argument("model")
@click.option("--history", is_flag=True, default=False, help="Draw the price series too.")
@click.option("--bucket", type=click.Choice(["raw", "hour", "day"]), default="hour")
def pricing(model: str, history: bool, bucket: str) -> None:
    """Market price of a GPU model ('RTX 4090') or of an AI model it serves (llama2-7b)."""
    path = f"/v1/marketplace/pricing/{quote_path(model, safe='')}"
    if not history:
        found = api().request("GET", path)
        emit(found, views.PRICING)
        _say_what_a_booking_costs(found)
        return
    series = api().request("GET", f"{path}/history", params={"bucket": bucket})
    state = click.get_current_context().find_root().obj
    if state.output != "table" or state.quiet:
        emit(series, views.PRICE_POINT)
        return
    out = console()
    show(drawn(api().request("GET", path), views.PRICING, None, out.is_terminal))
    click.echo()
    click.echo(price_chart(series, coloured=out.is_terminal, width=out.width))


def _say_what_a_booking_costs(found: dict[str, Any]) -> None:
    """Under the table: the market price and what a booking pays, side by side and named."""
    state = click.get_current_context().find_root().obj
    if state.output != "table" or state.quiet or "current_price" not in found:
        return
    booking = found.get("booking_price_range")
    pays = (
        f"{booking['low']} to {booking['high']} per hour (each GPU's own price)"
        if booking
        else "nothing is available now"
    )
    click.echo(f"\nMarket price: {found['current_price']} per hour (demand-adjusted reference)")
    click.echo(f"A booking now: {pays}")


@marketplace.command("offers")
@click.option("--status", type=click.Choice(["open", "closed"]), default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=None, help="Offers to skip.")
def offers(status: str | None, limit: int, offset: int | None) -> None:
    """Marketplace offers."""
    params = {"status": status, "limit": limit, "offset": offset}
    emit(api().request("GET", "/v1/marketplace/offers", params=params), views.OFFER)


@marketplace.command("stats")
def stats() -> None:
    """Marketplace statistics."""
    emit(api().request("GET", "/v1/marketplace/stats"))


@marketplace.command("bid")
@click.option("--capacity", type=int, default=1, show_default=True, help="GPUs.")
@click.option("--price", type=numbers.PRICE_TEXT, required=True, help="Maximum price per hour.")
@click.option("--provider", default=None, help="Only this miner.")
@click.option("--gpu-model", default=None)
@click.option("--hours", type=numbers.HOURS, default=1.0, show_default=True, help="Duration.")
@click.option("--notes", default=None)
def bid(
    capacity: int,
    price: str,
    provider: str | None,
    gpu_model: str | None,
    hours: float,
    notes: str | None,
) -> None:
    """Place a bid: GPUs are booked for you when one matches at or below the price."""
    body = {
        "capacity": capacity,
        "price": price,
        "provider": provider,
        "gpu_model": gpu_model,
        "duration_hours": hours,
        "notes": notes,
    }
    emit(
        api().request(
            "POST",
            "/v1/marketplace/bids",
            json={k: v for k, v in body.items() if v is not None},
            expect=(202,),
        ),
        views.BID,
    )


@marketplace.command("book-best")
@click.option("--hours", type=numbers.HOURS, required=True, help="Duration in hours.")
@click.option("--start", "start_time", default=None, help="ISO time with zone: reserve for later.")
@click.option("--model", default=None, help="GPU model, a case-insensitive substring.")
@click.option("--memory-min", type=int, default=None, help="Least memory in GB.")
@click.option("--region", default=None)
@click.option("--ai-model", default=None, help="Serves this AI model.")
@click.option("--miner-id", default=None, help="Only this provider.")
@click.option("--min-uptime", type=numbers.PRICE, default=None, help="Percent, 7 days.")
@click.option("--max-price", type=numbers.PRICE_TEXT, default=None, help="On demand: the cap.")
@click.option("--interruptible", is_flag=True, default=False, help="Rent it by a --bid.")
@click.option("--bid", type=numbers.PRICE_TEXT, default=None, help="Your bid per hour.")
@click.option("--explain", is_flag=True, default=False, help="Show the choice; book nothing.")
def book_best(
    hours: float,
    start_time: str | None,
    model: str | None,
    memory_min: int | None,
    region: str | None,
    ai_model: str | None,
    miner_id: str | None,
    min_uptime: float | None,
    max_price: str | None,
    interruptible: bool,
    bid: str | None,
    explain: bool,
) -> None:
    """Book the best GPU that meets every criterion (cheapest, then uptime, then rating);
    a refusal says which criterion left none."""
    criteria = {
        "duration_hours": hours,
        "start_time": start_time,
        "model": model,
        "memory_min": memory_min,
        "region": region,
        "ai_model": ai_model,
        "miner_id": miner_id,
        "min_uptime_pct": min_uptime,
        "max_price_per_hour": max_price,
    }
    body = {k: v for k, v in criteria.items() if v is not None} | rental(interruptible, bid)
    if explain:
        shown = api().request("POST", "/v1/marketplace/book", json=body, params={"explain": "true"})
        emit(shown, views.EXPLANATION)
        return
    emit(api().request("POST", "/v1/marketplace/book", json=body, expect=(201,)), views.BOOKING)


@marketplace.command("bids")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=None, help="Bids to skip.")
def bids(limit: int, offset: int | None) -> None:
    """Your bids."""
    params = {"limit": limit, "offset": offset}
    emit(api().request("GET", "/v1/marketplace/bids", params=params), views.BID)


@marketplace.command("cancel-bid")
@click.argument("bid_id")
def cancel_bid(bid_id: str) -> None:
    """Cancel an open bid (bookings it already made stand)."""
    emit(api().request("POST", f"/v1/marketplace/bids/{bid_id}/cancel"), views.BID)
