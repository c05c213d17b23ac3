"""``aitbc marketplace gpu ...``: register, list (filtered, sorted, paged), details (or watch
one), book, release, quote, change the price or pricing mode, delist, relist."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import click

from aitbc.cli import numbers, views
from aitbc.cli.context import api
from aitbc.cli.http import segment
from aitbc.cli.one_request import Command_, on_id
from aitbc.cli.output import console, emit
from aitbc.cli.watch import Watching, watch_options

SORTS = ("price", "memory", "rating", "newest", "uptime", "bid", "cleared")
STATUSES = ("available", "booked", "offline", "delisted")
NEXT_CURSOR = "X-Next-Cursor"


def rental_options(interruptible_help: str) -> Callable[[Command_], Command_]:
    """``--interruptible`` (with the help given) and ``--bid``, read by ``rental``."""

    def decorate(command: Command_) -> Command_:
        bid = click.option("--bid", type=numbers.PRICE_TEXT, help="Your bid per hour.")
        flag = click.option("--interruptible", is_flag=True, help=interruptible_help)
        return flag(bid(command))

    return decorate


@click.group()
def gpu() -> None:
    """GPUs: register, list, details, book, release, quote, update, delist, relist."""


@gpu.command("register")
@click.option("--name", required=True, help="GPU model, e.g. 'RTX 4090'.")
@click.option("--memory", type=int, default=None, help="Memory in GB.")
@click.option("--cuda-cores", type=int, default=None)
@click.option("--compute-capability", default=None)
@click.option("--price-per-hour", type=numbers.PRICE, default=None)
@click.option("--description", default=None)
@click.option("--miner-id", default=None)
def gpu_register(
    name: str,
    memory: int | None,
    cuda_cores: int | None,
    compute_capability: str | None,
    price_per_hour: float | None,
    description: str | None,
    miner_id: str | None,
) -> None:
    """Register a GPU."""
    spec = {
        "name": name,
        "memory_gb": memory,
        "cuda_cores": cuda_cores,
        "compute_capability": compute_capability,
        "price_per_hour": price_per_hour,
        "description": description,
    }
    body = {"gpu": {k: v for k, v in spec.items() if v is not None}}
    emit(
        api().request(
            "POST",
            "/v1/marketplace/gpu/register",
            json=body,
            headers={"X-Miner-ID": miner_id or "default"},
            expect=(201,),
        ),
        views.GPU_REGISTERED,
    )


def _pages(params: dict[str, Any], every: bool) -> tuple[list[Any], str | None]:
    """One page, or with ``every`` all of them (following X-Next-Cursor)."""
    rows, headers = api().exchange("GET", "/v1/marketplace/gpu/list", params=params)
    cursor = headers.get(NEXT_CURSOR)
    if not every:
        return rows, cursor
    with console(stderr=True).status("fetching GPUs") as status:
        while cursor:
            page, headers = api().exchange(
                "GET", "/v1/marketplace/gpu/list", params=params | {"cursor": cursor}
            )
            rows.extend(page)
            status.update(f"fetching GPUs: {len(rows)} so far")
            cursor = headers.get(NEXT_CURSOR)
    return rows, None


@gpu.command("list")
@click.option("--available", is_flag=True, default=False, help="Only GPUs bookable now.")
@click.option("--model", default=None, help="Model substring; * matches anything.")
@click.option("--memory-min", type=int, default=None)
@click.option("--price-max", type=numbers.PRICE_TEXT, default=None)
@click.option(
    "--bid-max",
    type=numbers.PRICE_TEXT,
    default=None,
    help="Only GPUs an interruptible bid of at most this per hour wins now.",
)
@click.option(
    "--cleared-max",
    type=numbers.PRICE_TEXT,
    default=None,
    help="Only GPUs whose last interruptible booking bid at most this per hour.",
)
@click.option("--region", default=None, help="Exact region, any case.")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--ai-model", default=None, help="Serves this AI model.")
@click.option("--miner-id", default=None, help="Only this miner's GPUs.")
@click.option(
    "--sort",
    type=click.Choice(SORTS),
    default=None,
    help="price (cheapest first, the default), memory, rating, newest, uptime (7 days), "
    "bid (the lowest bid that wins it now first) or cleared (the price it last cleared "
    "at, lowest first).",
)
@click.option("--limit", type=int, default=20, show_default=True, help="Page size.")
@click.option("--offset", type=int, default=None, help="Rows to skip.")
@click.option("--cursor", default=None, help="The next page: the cursor a full page ended with.")
@click.option("--all", "every", is_flag=True, default=False, help="Fetch every page.")
def gpu_list(
    available: bool,
    model: str | None,
    memory_min: int | None,
    price_max: str | None,
    bid_max: str | None,
    cleared_max: str | None,
    region: str | None,
    status: str | None,
    ai_model: str | None,
    miner_id: str | None,
    sort: str | None,
    limit: int,
    offset: int | None,
    cursor: str | None,
    every: bool,
) -> None:
    """List GPUs; a full page ends with the --cursor for the next one (on stderr)."""
    if cursor is not None and offset is not None:
        raise click.UsageError("give --cursor or --offset, not both")
    params = {
        "limit": limit,
        "available": "true" if available else None,
        "model": model,
        "memory_min": memory_min,
        "price_max": price_max,
        "bid_max": bid_max,
        "cleared_max": cleared_max,
        "region": region,
        "status": status,
        "ai_model": ai_model,
        "miner_id": miner_id,
        "sort": sort,
        "offset": offset,
        "cursor": cursor,
    }
    rows, next_cursor = _pages(params, every)
    asked = {
        "lowest_winning_bid": sort == "bid" or bid_max is not None,
        "last_clearing_price": sort == "cleared" or cleared_max is not None,
    }
    emit(rows, views.gpu_by([figure for figure, shown in asked.items() if shown]))
    if next_cursor:
        sorted_by = f"--sort {sort} " if sort else ""
        click.echo(f"more: {sorted_by}--cursor {next_cursor} (and the same filters)", err=True)


@gpu.command("details")
@click.argument("gpu_id")
@watch_options
def gpu_details(gpu_id: str, watching: Watching) -> None:
    """Show one GPU (or --watch it)."""
    path = f"/v1/marketplace/gpu/{segment(gpu_id)}"
    watching.show(lambda: api().request("GET", path), views.GPU, first=say_price)


@gpu.command("book")
@click.argument("gpu_id")
@click.option("--hours", type=numbers.HOURS, required=True, help="Duration in hours.")
@click.option("--job-id", default=None)
@click.option("--start", "start_time", default=None, help="ISO time with zone: reserve for later.")
@click.option(
    "--max-price", type=numbers.PRICE_TEXT, default=None, help="Refuse if the price is above."
)
@click.option("--quote-id", default=None, help="Book at the price of this quote.")
@rental_options(
    "Rent it interruptibly at --bid per hour: cheaper, but a booking that pays more may "
    "preempt yours after a notice."
)
@click.option("--idempotency-key", default=None, help="Makes a retry safe.")
def gpu_book(
    gpu_id: str,
    hours: float,
    job_id: str | None,
    start_time: str | None,
    max_price: str | None,
    quote_id: str | None,
    interruptible: bool,
    bid: str | None,
    idempotency_key: str | None,
) -> None:
    """Book a GPU (the cost moves into escrow): on demand, or --interruptible with a --bid."""
    body: dict[str, object] = {"gpu_id": gpu_id, "duration_hours": hours}
    body.update(rental(interruptible, bid))
    if job_id is not None:
        body["job_id"] = job_id
    if start_time is not None:
        body["start_time"] = start_time
    if max_price is not None:
        body["max_price_per_hour"] = max_price
    if quote_id is not None:
        body["quote_id"] = quote_id
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    emit(
        api().request(
            "POST",
            f"/v1/marketplace/gpu/{segment(gpu_id)}/book",
            json=body,
            headers=headers,
            expect=(201,),
        ),
        views.BOOKING,
    )


def rental(interruptible: bool, bid: str | None) -> dict[str, object]:
    """The body's rental type and bid: --interruptible needs a --bid, and a --bid is for
    an interruptible booking."""
    if interruptible and bid is None:
        raise click.UsageError("--interruptible needs --bid (your price per hour)")
    if bid is not None and not interruptible:
        raise click.UsageError("--bid is for an interruptible booking: add --interruptible")
    return {"rental_type": "interruptible", "bid_per_hour": bid} if interruptible else {}


@gpu.command("quote")
@click.argument("gpu_id")
@click.option("--hours", type=numbers.HOURS, required=True)
def gpu_quote(gpu_id: str, hours: float) -> None:
    """What booking a GPU would cost now; book with --quote-id to keep that price."""
    emit(
        api().request(
            "POST",
            f"/v1/marketplace/gpu/{segment(gpu_id)}/quote",
            json={"duration_hours": hours},
            expect=(201,),
        ),
        views.QUOTE,
    )


@gpu.command("update")
@click.argument("gpu_id")
@click.option("--price-per-hour", type=numbers.PRICE_TEXT, default=None, help="New base price.")
@click.option(
    "--pricing-mode",
    type=click.Choice(["fixed", "dynamic"]),
    default=None,
    help="fixed: the base price; dynamic: follows demand.",
)
@click.option("--description", default=None)
@click.option(
    "--interruptible/--no-interruptible",
    default=None,
    help="Whether it may be rented interruptibly, by bids.",
)
@click.option(
    "--min-bid",
    default=None,
    help="The least interruptible bid per hour ('default': the marketplace's share of the price).",
)
def gpu_update(
    gpu_id: str,
    price_per_hour: str | None,
    pricing_mode: str | None,
    description: str | None,
    interruptible: bool | None,
    min_bid: str | None,
) -> None:
    """Change a GPU's price, pricing mode, description or interruptible rentals (its miner
    or an admin)."""
    changes = {
        "price_per_hour": price_per_hour,
        "pricing_mode": pricing_mode,
        "description": description,
        "interruptible": interruptible,
    }
    body: dict[str, object] = {k: v for k, v in changes.items() if v is not None}
    if min_bid is not None:
        default = min_bid == "default"
        body["min_bid_per_hour"] = (
            None if default else numbers.PRICE_TEXT.convert(min_bid, None, None)
        )
    if not body:
        raise click.UsageError(
            "nothing to change: give --price-per-hour, --pricing-mode, --description, "
            "--interruptible or --min-bid"
        )
    changed = api().request("PATCH", f"/v1/marketplace/gpu/{segment(gpu_id)}", json=body)
    say_price(changed)
    emit(changed, views.GPU)


def say_price(found: Any) -> None:
    """Under dynamic pricing, say why the GPU is listed at its price (on stderr): its base
    times its model's demand multiplier, and what set the multiplier."""
    if not isinstance(found, dict) or found.get("pricing_mode") != "dynamic":
        return
    model = str(found["model"])
    market = api().request("GET", f"/v1/marketplace/pricing/{segment(model)}")
    click.echo(price_reason(found, market), err=True)


def price_reason(gpu: dict[str, Any], market: dict[str, Any]) -> str:
    from aitbc.pricing import engine  # the rule's figures (a module of constants)

    def times(bp: int) -> str:
        return f"{Decimal(bp) / engine.BP:g}"

    demand = market["demand"]
    booked = Decimal(str(demand["utilisation"])) * 100
    return (
        f"listed at {gpu['price_per_hour']} per hour: your base {gpu['base_price_per_hour']} "
        f"x the {market['model']} demand multiplier {market['demand_multiplier']} "
        f"({booked:.0f} % of its {demand['supply']} online GPUs booked, against a "
        f"{engine.TARGET_UTILISATION_BP // 100} % target; {demand['recent_bookings']} "
        f"booking(s) in the last {demand['window_minutes']} min). Dynamic pricing moves the "
        f"multiplier by at most {times(engine.MAX_STEP_BP)} a recomputation, between "
        f"{times(engine.MIN_MULTIPLIER_BP)} and {times(engine.MAX_MULTIPLIER_BP)}; "
        "--pricing-mode fixed lists it at its base."
    )


for command in (
    on_id(
        "release",
        "POST /v1/marketplace/gpu/{gpu_id}/release",
        views.BOOKING,
        help="Release your booking on a GPU (unused time refunded).",
    ),
    on_id(
        "delist",
        "DELETE /v1/marketplace/gpu/{gpu_id}",
        views.GPU,
        help="Take a GPU off the market (its miner or an admin); refused while it is booked.",
    ),
    on_id(
        "relist",
        "POST /v1/marketplace/gpu/{gpu_id}/relist",
        views.GPU,
        help="Put a delisted GPU back on the market (its miner or an admin); registering again "
        "does not.",
    ),
):
    gpu.add_command(command)
