from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from aitbc.cli import views
from aitbc.cli.context import api, ask
from aitbc.cli.http import segment
from aitbc.cli.numbers import PRICE_TEXT, FiniteFloat
from aitbc.cli.one_request import Command_, on_id
from aitbc.cli.output import emit


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # e.g. a JSON text longer than a file name may be
        return False


def load_json(text_or_path: str) -> Any:
    """JSON given inline or in a file; NaN, Infinity and numbers too large for a float are
    refused here, as the server would refuse them."""
    raw = Path(text_or_path).read_text() if _is_file(text_or_path) else text_or_path
    try:
        return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON or a JSON file: {exc}") from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large a number")
    return number


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
    emit(api().request("POST", "/v1/miners/register", json=body), views.MINER)


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
    emit(api().request("POST", "/v1/miners/heartbeat", json=body), views.MINER)


@miner.command("poll")
def poll() -> None:
    """Take the next job assigned to your GPUs (prints nothing when there is none). It is
    taken as a claim and confirmed once it has arrived here, so a job whose answer is lost
    on the way goes back for the next poll."""
    client = api()
    job = client.request("POST", "/v1/miners/poll", json={"claim": True}, expect=(200, 204))
    if job is not None:
        client.request("POST", f"/v1/miners/jobs/{segment(job['job_id'])}/start")
        emit(job, views.MINER_JOB)


@miner.command("result")
@click.argument("job_id")
@click.option("--result", "result_json", default="{}", help="JSON object (or a file).")
def result(job_id: str, result_json: str) -> None:
    """Report a job's result."""
    body = {"result": load_json(result_json)}
    emit(api().request("POST", f"/v1/miners/jobs/{segment(job_id)}/result", json=body))


miner.add_command(
    on_id(
        "fail",
        "POST /v1/miners/jobs/{job_id}/fail",
        None,
        click.Option(["--error"], required=True),
        help="Report a job's failure (the client is refunded in full).",
    )
)


@miner.command("earnings")
@click.option("--from", "from_time", default=None, help="ISO time with zone: paid from then on.")
@click.option("--to", "to_time", default=None, help="ISO time with zone: paid before then.")
@click.option("--miner-id", default=None, help="Admin: whose (a miner key sees its own).")
@click.option("--csv", "as_csv", is_flag=True, help="The GPUs' lines as CSV (for a spreadsheet).")
def earnings(
    from_time: str | None, to_time: str | None, miner_id: str | None, as_csv: bool
) -> None:
    """What your bookings paid you (less the platform fee), in all and by GPU; what open
    bookings still hold."""
    params = {"from_time": from_time, "to_time": to_time}
    found = api().request("GET", f"/v1/miners/{segment(miner_id or 'me')}/earnings", params=params)
    if not as_csv:
        emit(found, views.EARNINGS)
        return
    out = io.StringIO()
    lines = csv.writer(out, lineterminator="\n")
    lines.writerow(["gpu_id", "model", "earned", "bookings_paid", "currency"])
    for gpu in found["by_gpu"]:
        lines.writerow(
            [gpu["gpu_id"], gpu["model"], gpu["earned"], gpu["bookings_paid"], found["currency"]]
        )
    click.echo(out.getvalue(), nl=False)


@miner.command("deregister")
@click.option("--yes", "-y", "agreed", is_flag=True, help="Do it without asking.")
def deregister(agreed: bool) -> None:
    """Leave the marketplace: offline at once, your GPUs delisted (booked ones when their
    bookings end; the outage rules end what runs)."""
    if not agreed:
        ask("Deregister this miner and delist its GPUs?", doing="deregister")
    emit(api().request("DELETE", "/v1/miners/me"), views.MINER)


def _seconds(
    flag: str,
    *,
    at_least: float,
    at_most: float | None = None,
    default: float | None,
    help: str,
    envvar: str | None = None,
) -> Callable[[Command_], Command_]:
    """One of the agent's durations: seconds, a finite number within its bounds (its
    default, if any, shown)."""
    return click.option(
        flag,
        type=FiniteFloat(at_least, at_most),
        default=default,
        show_default=default is not None,
        envvar=envvar,
        help=help,
    )


@miner.command("run")
@click.option(
    "--exec",
    "command",
    default=None,
    help="Shell command run per job: payload "
    "JSON on stdin, result on stdout (JSON or text), non-zero exit = failure.",
)
@click.option(
    "--http",
    "endpoint",
    default=None,
    help="URL each job's payload is POSTed to (a local model server); a 2xx answer is the result.",
)
@click.option(
    "--gpus",
    "gpus_json",
    default=None,
    help="GPUs to register when nvidia-smi "
    "is not there: JSON list (or a file holding it), as for `miner register`.",
)
@click.option(
    "--price-per-hour",
    type=PRICE_TEXT,
    default="1.0",
    show_default=True,
    help="Price of each GPU found by nvidia-smi.",
)
@click.option("--region", default=None)
@_seconds(
    "--heartbeat-seconds",
    at_least=0.1,
    default=15.0,
    envvar="AITBC_AGENT_HEARTBEAT_SECONDS",
    help="How often the agent heartbeats (keep it well under the coordinator's "
    "AITBC_HEARTBEAT_TIMEOUT_SECONDS, 90 by default).",
)
@_seconds(
    "--poll-wait",
    at_least=0,
    at_most=30,
    default=20.0,
    help="Seconds each long poll may wait for a job.",
)
@_seconds(
    "--stop-grace",
    at_least=0,
    default=30.0,
    help="On SIGTERM, seconds the running job may take before it is stopped.",
)
@_seconds(
    "--job-timeout",
    at_least=0.1,
    default=None,
    help="Fail a job that runs longer than this many seconds.",
)
@click.option(
    "--once",
    is_flag=True,
    help="One cycle (register, poll, run at most one job, report), for scripts.",
)
@click.pass_context
def run(
    ctx: click.Context,
    command: str | None,
    endpoint: str | None,
    gpus_json: str | None,
    price_per_hour: str,
    region: str | None,
    heartbeat_seconds: float,
    poll_wait: float,
    stop_grace: float,
    job_timeout: float | None,
    once: bool,
) -> None:
    """Run this host as a miner: register its GPUs, heartbeat, take jobs and run them."""
    from aitbc.agent.runner import serve  # the agent's imports only when it runs

    if (command is None) == (endpoint is None):
        raise click.UsageError("give exactly one of --exec COMMAND or --http URL")
    configured = load_json(gpus_json) if gpus_json else []
    if not isinstance(configured, list):
        raise click.BadParameter("must be a JSON list of GPUs", param_hint="--gpus")
    config = ctx.find_root().obj.config()
    done = serve(
        coordinator_url=config.coordinator_url,
        api_key=config.api_key,
        command=command,
        endpoint=endpoint,
        configured_gpus=configured,
        price_per_hour=price_per_hour,
        region=region,
        heartbeat_seconds=heartbeat_seconds,
        poll_wait_seconds=poll_wait,
        stop_grace_seconds=stop_grace,
        job_timeout=job_timeout,
        once=once,
    )
    click.echo(f"stopped after {done} job(s)", err=True)
