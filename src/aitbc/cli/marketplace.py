"""``aitbc marketplace``: GPUs (``gpu.py``), reviews (``reviews.py``), orders, pricing,
offers, statistics and bids."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import click

from aitbc.cli import numbers, reviews, views
from aitbc.cli.context import api, ask
from aitbc.cli.gpu import gpu, rental, rental_options
from aitbc.cli.http import segment
from aitbc.cli.one_request import on_id, paging_options
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
@paging_options(limit=10, skipped="Orders")
def orders(status: str | None, limit: int, offset: int | None) -> None:
    """List your orders."""
    params = {"limit": limit, "status": status, "offset": offset}
    emit(api().request("GET", "/v1/marketplace/orders", params=params), views.ORDER)


marketplace.add_command(
    on_id(
        "order",
        "GET /v1/marketplace/orders/{order_id}",
        views.ORDER,
        help="Show one order with its amounts and status history.",
    )
)


@marketplace.command("pricing")
@click.argument("model")
@click.option("--history", is_flag=True, default=False, help="Draw the price series too.")
@click.option("--bucket", type=click.Choice(["raw", "hour", "day"]), default="hour")
def pricing(model: str, history: bool, bucket: str) -> None:
    """Market price of a GPU model ('RTX 4090') or of an AI model it serves (llama2-7b)."""
    path = f"/v1/marketplace/pricing/{segment(model)}"
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
    from aitbc.cli.chart import price_chart  # plotext only when a chart is drawn

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
@paging_options(limit=50, skipped="Offers")
def offers(status: str | None, limit: int, offset: int | None) -> None:
    """Marketplace offers."""
    params = {"status": status, "limit": limit, "offset": offset}
    emit(api().request("GET", "/v1/marketplace/offers", params=params), views.OFFER)


@marketplace.command("stats")
def stats() -> None:
    """Marketplace statistics (the JSON keeps the seed CLI's camelCase keys)."""
    found = api().request("GET", "/v1/marketplace/stats")
    shown = {_snake(k): v for k, v in found.items()} if isinstance(found, dict) else None
    emit(found, shown=shown)


def _snake(key: str) -> str:
    """``totalOffers`` -> ``total_offers``."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


@marketplace.command("bid")
@click.option("--capacity", type=int, default=1, show_default=True, help="GPUs.")
@click.option("--price", type=numbers.PRICE_TEXT, required=True, help="Maximum price per hour.")
@click.option("--provider", default=None, help="Only this miner.")
@click.option("--gpu-model", default=None)
@click.option("--hours", type=numbers.HOURS, default=1.0, show_default=True, help="Duration.")
@click.option("--notes", default=None)
@click.option("--yes", "-y", "agreed", is_flag=True, help="Place it without asking (for scripts).")
def bid(
    capacity: int,
    price: str,
    provider: str | None,
    gpu_model: str | None,
    hours: float,
    notes: str | None,
    agreed: bool,
) -> None:
    """Place a bid: GPUs that match at or below the price are booked for you, now and as
    they come; it says what it may spend and asks first (--yes: does not ask)."""
    body = {
        "capacity": capacity,
        "price": price,
        "provider": provider,
        "gpu_model": gpu_model,
        "duration_hours": hours,
        "notes": notes,
    }
    if not agreed:
        _agree_to_bid(capacity, price, hours, provider, gpu_model)
    placed = api().request(
        "POST",
        "/v1/marketplace/bids",
        json={k: v for k, v in body.items() if v is not None},
        expect=(202,),
    )
    booked = placed.get("booking_ids") or []
    said = f"booked {len(booked)} of {capacity} GPU(s) now"
    if booked:
        said += f" ({', '.join(booked)}: see `aitbc bookings list`)"
    if len(booked) < capacity:
        said += f"; the rest as GPUs match, until {placed.get('expires_at')}"
    click.echo(said, err=True)
    emit(placed, views.BID, shown=_bid_shown(placed))


def _agree_to_bid(
    capacity: int, price: str, hours: float, provider: str | None, gpu_model: str | None
) -> None:
    """Say what the bid may book and spend, and ask; refuse to ask where nobody can answer."""
    most = Decimal(price) * capacity * Decimal(str(hours))
    what = f"{capacity} GPU(s)" + (f" of model {gpu_model}" if gpu_model else "")
    what += f" from {provider}" if provider else ""
    click.echo(
        f"This bid books up to {what} at up to {price} per hour for {hours:g} h each, as they "
        f"match (some may be booked at once): up to {most.normalize():f} AITBC from your "
        "balance.",
        err=True,
    )
    ask("Place it?", doing="place the bid")


def _bid_shown(found: Any) -> Any:
    """A bid as a table shows it: its id as bid_id (the JSON keeps the seed's ``id``)."""
    if isinstance(found, list):
        return [_bid_shown(b) for b in found]
    if isinstance(found, dict) and "id" in found:
        return {"bid_id": found["id"]} | {k: v for k, v in found.items() if k != "id"}
    return found


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
@rental_options("Rent it interruptibly at --bid per hour.")
@click.option("--count", type=click.IntRange(1, 16), default=1, help="GPUs at once: a gang.")
@click.option(
    "--same-miner", "placement", flag_value="same_miner", help="A gang's GPUs on one miner."
)
@click.option(
    "--same-region", "placement", flag_value="same_region", help="A gang's GPUs in one region."
)
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
    count: int,
    placement: str | None,
    explain: bool,
) -> None:
    """Book the best GPU that meets every criterion (cheapest, then uptime, then rating);
    a refusal says which criterion left none. With --count, a gang: that many GPUs at once,
    all or nothing (see `aitbc bookings gang`)."""
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
        "count": count if count > 1 else None,
        "placement": placement,
    }
    body = {k: v for k, v in criteria.items() if v is not None} | rental(interruptible, bid)
    if explain:
        shown = api().request("POST", "/v1/marketplace/book", json=body, params={"explain": "true"})
        emit(shown, views.EXPLANATION)
        return
    made = api().request("POST", "/v1/marketplace/book", json=body, expect=(201,))
    emit(made, views.GANG if count > 1 else views.BOOKING)


@marketplace.command("bids")
@paging_options(limit=50, skipped="Bids")
def bids(limit: int, offset: int | None) -> None:
    """Your bids."""
    params = {"limit": limit, "offset": offset}
    found = api().request("GET", "/v1/marketplace/bids", params=params)
    emit(found, views.BID, shown=_bid_shown(found))


@marketplace.command("cancel-bid")
@click.argument("bid_id")
def cancel_bid(bid_id: str) -> None:
    """Cancel an open bid (bookings it already made stand)."""
    cancelled = api().request("POST", f"/v1/marketplace/bids/{segment(bid_id)}/cancel")
    emit(cancelled, views.BID, shown=_bid_shown(cancelled))
