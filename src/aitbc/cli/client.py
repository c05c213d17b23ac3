from __future__ import annotations

import click

from aitbc.cli import numbers, views
from aitbc.cli.context import api
from aitbc.cli.gpu import rental, rental_options
from aitbc.cli.http import segment
from aitbc.cli.miner import load_json
from aitbc.cli.one_request import on_id, watchable_list
from aitbc.cli.output import emit
from aitbc.cli.watch import Watching, watch_options


@click.group()
def client() -> None:
    """Jobs (client key)."""


@client.command("submit")
@click.option("--payload", default="{}", help="JSON object (or a file holding it).")
@click.option(
    "--hours",
    type=numbers.HOURS,
    default=None,
    help="How long to book the GPU for (default: the server's AITBC_JOB_DEFAULT_HOURS; the "
    "job pays only for the time it runs).",
)
@click.option("--gpu-model", default=None)
@click.option("--memory-min", type=int, default=None)
@click.option("--ai-model", default=None)
@click.option("--region", default=None)
@click.option("--max-price", type=numbers.PRICE_TEXT, default=None, help="Maximum price per hour.")
@click.option("--ttl", type=int, default=3600, show_default=True, help="Seconds to live.")
@rental_options(
    "Run it on a GPU rented interruptibly at --bid per hour: cheaper, but preempted by a "
    "booking that pays more (the job then goes back to the queue)."
)
def submit(
    payload: str,
    hours: float | None,
    gpu_model: str | None,
    memory_min: int | None,
    ai_model: str | None,
    region: str | None,
    max_price: str | None,
    ttl: int,
    interruptible: bool,
    bid: str | None,
) -> None:
    """Submit a job; a matching GPU is booked for it now or when one frees up."""
    constraints = {
        "gpu_model": gpu_model,
        "memory_min_gb": memory_min,
        "ai_model": ai_model,
        "region": region,
        "max_price_per_hour": max_price,
    }
    body = {
        "payload": load_json(payload),
        "ttl_seconds": ttl,
        "constraints": {k: v for k, v in constraints.items() if v is not None},
    }
    if hours is not None:
        body["duration_hours"] = hours
    body.update(rental(interruptible, bid))
    emit(api().request("POST", "/v1/jobs", json=body, expect=(201,)), views.JOB)


@client.command("status")
@click.argument("job_id")
@watch_options
def status(job_id: str, watching: Watching) -> None:
    """Show one job (or --watch it)."""
    watching.show(lambda: api().request("GET", f"/v1/jobs/{segment(job_id)}"), views.JOB)


for command in (
    watchable_list(
        "jobs", "/v1/jobs", views.JOB, skipped="Jobs", help="Your jobs (or --watch them)."
    ),
    on_id(
        "cancel",
        "POST /v1/jobs/{job_id}/cancel",
        views.JOB,
        help="Cancel a job (a running one is charged for the time used).",
    ),
):
    client.add_command(command)
