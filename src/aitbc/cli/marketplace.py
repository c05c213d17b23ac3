from __future__ import annotations

from urllib.parse import quote as quote_path

import click

from aitbc.cli.chart import price_chart
from aitbc.cli.context import api
from aitbc.cli.output import emit


@click.group()
def marketplace() -> None:
    """The GPU marketplace."""


@marketplace.group()
def gpu() -> None:
    """GPUs: register, list, details, book, release."""


@gpu.command("register")
@click.option("--name", required=True, help="GPU model, e.g. 'RTX 4090'.")
@click.option("--memory", type=int, default=None, help="Memory in GB.")
@click.option("--cuda-cores", type=int, default=None)
@click.option("--compute-capability", default=None)
@click.option("--price-per-hour", type=float, default=None)
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
        )
    )


@gpu.command("list")
@click.option("--available", is_flag=True, default=False)
@click.option("--model", default=None, help="Model substring; * matches anything.")
@click.option("--memory-min", type=int, default=None)
@click.option("--price-max", type=float, default=None)
@click.option("--limit", type=int, default=20, show_default=True)
def gpu_list(
    available: bool, model: str | None, memory_min: int | None, price_max: float | None, limit: int
) -> None:
    """List GPUs."""
    params = {
        "limit": limit,
        "available": "true" if available else None,
        "model": model,
        "memory_min": memory_min,
        "price_max": price_max,
    }
    emit(api().request("GET", "/v1/marketplace/gpu/list", params=params))


@gpu.command("details")
@click.argument("gpu_id")
def gpu_details(gpu_id: str) -> None:
    """Show one GPU."""
    emit(api().request("GET", f"/v1/marketplace/gpu/{gpu_id}"))


@gpu.command("book")
@click.argument("gpu_id")
@click.option("--hours", type=float, required=True, help="Duration in hours.")
@click.option("--job-id", default=None)
@click.option("--start", "start_time", default=None, help="ISO time with zone: reserve for later.")
@click.option("--max-price", type=str, default=None, help="Refuse if the price per hour is above.")
@click.option("--quote-id", default=None, help="Book at the price of this quote.")
@click.option("--idempotency-key", default=None, help="Makes a retry safe.")
def gpu_book(
    gpu_id: str,
    hours: float,
    job_id: str | None,
    start_time: str | None,
    max_price: str | None,
    quote_id: str | None,
    idempotency_key: str | None,
) -> None:
    """Book a GPU (the cost moves into escrow)."""
    body: dict[str, object] = {"gpu_id": gpu_id, "duration_hours": hours}
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
            "POST", f"/v1/marketplace/gpu/{gpu_id}/book", json=body, headers=headers, expect=(201,)
        )
    )


@gpu.command("release")
@click.argument("gpu_id")
def gpu_release(gpu_id: str) -> None:
    """Release your booking on a GPU (unused time refunded)."""
    emit(api().request("POST", f"/v1/marketplace/gpu/{gpu_id}/release"))


@marketplace.command("orders")
@click.option(
    "--status",
    type=click.Choice(["pending", "active", "completed", "released", "cancelled"]),
    default=None,
)
@click.option("--limit", type=int, default=10, show_default=True)
def orders(status: str | None, limit: int) -> None:
    """List your orders."""
    emit(api().request("GET", "/v1/marketplace/orders", params={"limit": limit, "status": status}))


@marketplace.command("reviews")
@click.argument("gpu_id")
@click.option("--limit", type=int, default=10, show_default=True)
def reviews(gpu_id: str, limit: int) -> None:
    """A GPU's rating and reviews."""
    emit(api().request("GET", f"/v1/marketplace/gpu/{gpu_id}/reviews", params={"limit": limit}))


@marketplace.command("review")
@click.argument("gpu_id")
@click.option("--rating", type=click.IntRange(1, 5), required=True)
@click.option("--comment", default=None)
def review(gpu_id: str, rating: int, comment: str | None) -> None:
    """Review a GPU you have booked."""
    emit(
        api().request(
            "POST",
            f"/v1/marketplace/gpu/{gpu_id}/reviews",
            json={"rating": rating, "comment": comment},
            expect=(201,),
        )
    )


@marketplace.command("pricing")
@click.argument("model")
@click.option("--history", is_flag=True, default=False, help="Draw the price series too.")
@click.option("--bucket", type=click.Choice(["raw", "hour", "day"]), default="hour")
def pricing(model: str, history: bool, bucket: str) -> None:
    """Market price of a GPU model (e.g. 'RTX 4090') or an AI model (e.g. llama2-7b)."""
    path = f"/v1/marketplace/pricing/{quote_path(model, safe='')}"
    if not history:
        emit(api().request("GET", path))
        return
    series = api().request("GET", f"{path}/history", params={"bucket": bucket})
    if click.get_current_context().find_root().obj.output != "table":
        emit(series)
        return
    emit(api().request("GET", path))
    click.echo()
    click.echo(price_chart(series))


@gpu.command("quote")
@click.argument("gpu_id")
@click.option("--hours", type=float, required=True)
def gpu_quote(gpu_id: str, hours: float) -> None:
    """What booking a GPU would cost now; book with --quote-id to keep that price."""
    emit(
        api().request(
            "POST",
            f"/v1/marketplace/gpu/{gpu_id}/quote",
            json={"duration_hours": hours},
            expect=(201,),
        )
    )


@marketplace.command("offers")
@click.option("--status", type=click.Choice(["open", "closed"]), default=None)
@click.option("--limit", type=int, default=50, show_default=True)
def offers(status: str | None, limit: int) -> None:
    """Marketplace offers."""
    emit(api().request("GET", "/v1/marketplace/offers", params={"status": status, "limit": limit}))


@marketplace.command("stats")
def stats() -> None:
    """Marketplace statistics."""
    emit(api().request("GET", "/v1/marketplace/stats"))


@marketplace.command("bid")
@click.option("--capacity", type=int, default=1, show_default=True, help="How many GPUs.")
@click.option("--price", required=True, help="Maximum price per hour.")
@click.option("--provider", default=None, help="Only this miner.")
@click.option("--gpu-model", default=None)
@click.option("--hours", type=float, default=1.0, show_default=True, help="Booking duration.")
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
        )
    )


@marketplace.command("bids")
@click.option("--limit", type=int, default=50, show_default=True)
def bids(limit: int) -> None:
    """Your bids."""
    emit(api().request("GET", "/v1/marketplace/bids", params={"limit": limit}))
