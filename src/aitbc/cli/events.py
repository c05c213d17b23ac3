"""``aitbc events`` (the feed, ``--follow`` to keep printing) and ``aitbc webhooks``."""

from __future__ import annotations

import json
from typing import Any

import click

from aitbc.cli import views
from aitbc.cli.context import api
from aitbc.cli.http import segment
from aitbc.cli.one_request import on_id
from aitbc.cli.output import emit

FOLLOW_WAIT_SECONDS = 30
FIRST_LOOK = 10  # events shown when --follow starts without --after


def _line(event: dict[str, Any]) -> str:
    """One event on one line: id, time, type, object, and the state it left it in."""
    data = event.get("data") or {}
    state = data.get("status") or data.get("state") or ""
    extra = data.get("amount") or ""
    if data.get("ends_in_seconds") is not None:
        extra = f"ends in {int(data['ends_in_seconds']) // 60} min"
    parts = [str(event["id"]), event["at"], event["type"], event["object_id"], str(state)]
    return "  ".join(p for p in [*parts, str(extra)] if p)


def _as_json_lines() -> bool:
    return click.get_current_context().find_root().obj.output in ("json", "yaml")


@click.command("events")
@click.option("--after", type=click.IntRange(min=0), default=None, help="Events after this id.")
@click.option(
    "--types", default=None, help="Types or families, comma-separated: booking.*,job.finished"
)
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@click.option("--follow", "-f", is_flag=True, help="Keep printing events as they happen.")
@click.option(
    "--count", type=click.IntRange(min=1), default=None, help="With --follow: stop after this many."
)
def events(
    after: int | None, types: str | None, limit: int, follow: bool, count: int | None
) -> None:
    """Your events, oldest first (docs/events.md lists the types). With --follow, the
    newest few and then each new one as it comes, one a line (JSON lines with -o json)."""
    client = api()
    params: dict[str, Any] = {"types": types, "limit": limit}
    if not follow:
        emit(
            client.request("GET", "/v1/events", params={**params, "after": after or 0}),
            views.EVENTS,
        )
        return
    if after is None:
        page = client.request(
            "GET", "/v1/events", params={**params, "latest": "true", "limit": FIRST_LOOK}
        )
    else:
        page = client.request("GET", "/v1/events", params={**params, "after": after})
    shown = 0
    try:
        while True:
            for event in page["events"]:
                click.echo(json.dumps(event) if _as_json_lines() else _line(event))
                shown += 1
                if count is not None and shown >= count:
                    return
            page = client.request(
                "GET",
                "/v1/events",
                params={**params, "after": page["next_after"], "wait": FOLLOW_WAIT_SECONDS},
                timeout=FOLLOW_WAIT_SECONDS + 10,
            )
    except KeyboardInterrupt:
        return


@click.group("webhooks")
def webhooks() -> None:
    """Have your events posted to a URL of yours, signed (docs/events.md)."""


@webhooks.command("create")
@click.argument("url")
@click.option("--types", default=None, help="Types or families, comma-separated (default: all).")
def create(url: str, types: str | None) -> None:
    """Make a webhook; its signing secret is shown this once."""
    made = api().request("POST", "/v1/webhooks", json={"url": url, "types": types}, expect=(201,))
    emit(made, views.WEBHOOK_MADE)
    click.echo("The secret is shown only now: keep it to check signatures.", err=True)


@webhooks.command("list")
def list_webhooks() -> None:
    """Your webhooks and how their deliveries go."""
    emit(api().request("GET", "/v1/webhooks"), views.WEBHOOK)


for command in (
    on_id("show", "GET /v1/webhooks/{webhook_id}", views.WEBHOOK),
    on_id(
        "test",
        "POST /v1/webhooks/{webhook_id}/test",
        views.DELIVERY,
        help="Post a signed webhook.test event now and say how it went.",
    ),
):
    webhooks.add_command(command)


@webhooks.command("deliveries")
@click.argument("webhook_id")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
def deliveries(webhook_id: str, limit: int) -> None:
    """The webhook's delivery attempts, newest first."""
    found = api().request(
        "GET", f"/v1/webhooks/{segment(webhook_id)}/deliveries", params={"limit": limit}
    )
    emit(found, views.DELIVERY)


def _set_enabled(webhook_id: str, enabled: bool) -> None:
    changed = api().request(
        "PATCH", f"/v1/webhooks/{segment(webhook_id)}", json={"enabled": enabled}
    )
    emit(changed, views.WEBHOOK)


@webhooks.command("enable")
@click.argument("webhook_id")
def enable(webhook_id: str) -> None:
    """Deliver again, from the event it stopped at."""
    _set_enabled(webhook_id, True)


@webhooks.command("disable")
@click.argument("webhook_id")
def disable(webhook_id: str) -> None:
    """Pause deliveries (events wait; enable resumes)."""
    _set_enabled(webhook_id, False)


@webhooks.command("delete")
@click.argument("webhook_id")
def delete(webhook_id: str) -> None:
    api().request("DELETE", f"/v1/webhooks/{segment(webhook_id)}", expect=(204,))
    click.echo(f"Deleted webhook {webhook_id}.")
