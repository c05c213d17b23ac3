from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from aitbc.cli.context import api
from aitbc.cli.output import emit


def load_json(text_or_path: str) -> Any:
    path = Path(text_or_path)
    raw = path.read_text() if path.exists() else text_or_path
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON or a JSON file: {exc}") from exc


@click.group()
def miner() -> None:
    """Miner operations (miner key)."""


@miner.command("register")
@click.option(
    "--gpus",
    "gpus_json",
    required=True,
    help='JSON list (or a file holding it), e.g. \'[{"model": "RTX 4090", "memory_gb": 24, '
    '"price_per_hour": "0.5"}]\'.',
)
@click.option("--concurrency", type=int, default=1, show_default=True)
@click.option("--region", default=None)
def register(gpus_json: str, concurrency: int, region: str | None) -> None:
    """Register this miner and its GPUs (re-registering updates them)."""
    body = {"gpus": load_json(gpus_json), "concurrency": concurrency, "region": region}
    emit(api().request("POST", "/v1/miners/register", json=body))


@miner.command("heartbeat")
@click.option("--status", type=click.Choice(["online", "draining", "offline"]), default="online")
@click.option("--inflight", type=int, default=0, show_default=True)
@click.option("--gpus", "gpus_json", default=None, help="JSON list of per-GPU health reports.")
def heartbeat(status: str, inflight: int, gpus_json: str | None) -> None:
    """Report liveness and GPU health."""
    body = {
        "status": status,
        "inflight": inflight,
        "gpus": load_json(gpus_json) if gpus_json else [],
    }
    emit(api().request("POST", "/v1/miners/heartbeat", json=body))


@miner.command("poll")
def poll() -> None:
    """Take the next job assigned to your GPUs (prints nothing when there is none)."""
    job = api().request("POST", "/v1/miners/poll", expect=(200, 204))
    if job is not None:
        emit(job)


@miner.command("result")
@click.argument("job_id")
@click.option("--result", "result_json", default="{}", help="JSON object (or a file).")
def result(job_id: str, result_json: str) -> None:
    """Report a job's result."""
    body = {"result": load_json(result_json)}
    emit(api().request("POST", f"/v1/miners/jobs/{job_id}/result", json=body))


@miner.command("fail")
@click.argument("job_id")
@click.option("--error", required=True)
def fail(job_id: str, error: str) -> None:
    """Report a job's failure (the client is refunded in full)."""
    emit(api().request("POST", f"/v1/miners/jobs/{job_id}/fail", json={"error": error}))
