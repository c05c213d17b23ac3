from __future__ import annotations

import click

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
