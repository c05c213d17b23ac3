"""``/v1/webhooks``: an owner's webhooks, their test and their delivery log."""

from __future__ import annotations

import socket
from typing import Annotated

from fastapi import FastAPI, Path, Request, Response

from aitbc.http.context import ContextDep
from aitbc.http.deps import AnyKeyDep
from aitbc.http.errors import error_responses
from aitbc.http.pagination import Limit
from aitbc.http.routing import APIRouter
from aitbc.webhooks import service, targets
from aitbc.webhooks.schemas import (
    DeliveryPublic,
    WebhookChange,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryBody,
    WebhookPublic,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
WebhookId = Annotated[str, Path(max_length=40)]


@router.post(
    "",
    status_code=201,
    responses=error_responses(401, 409),
    description="Your events from now on (all, or the `types` named) are posted to `url` "
    "as JSON (the `aitbc-event` webhook of this document), signed with the `secret` "
    "this answer shows once. "
    "A delivery is retried with back-off until the receiver answers 2xx, for "
    "AITBC_WEBHOOK_GIVE_UP_HOURS (at least 24); then the webhook is disabled and a "
    "`webhook.disabled` event says so. Private and loopback addresses are refused unless "
    "the operator allows them. docs/events.md shows how to check a signature.",
)
async def create_webhook(
    body: WebhookCreate, request: Request, ctx: ContextDep, principal: AnyKeyDep
) -> WebhookCreated:
    """Have your events posted to a URL"""
    port = request.url.port or (443 if request.url.scheme == "https" else 80)
    own = [(request.url.hostname or "", port), (socket.gethostname(), port)]
    await targets.check(body.url, allow_private=ctx.settings.webhook_allow_private, own=own)
    hook = await ctx.write(
        service.create, owner_id=principal.owner_id, url=body.url, types=body.types, now=ctx.now()
    )
    return WebhookCreated.of(hook)


@router.get("", responses=error_responses(401))
async def list_webhooks(ctx: ContextDep, principal: AnyKeyDep) -> list[WebhookPublic]:
    """Your webhooks"""
    hooks = await ctx.read(service.mine, owner_id=principal.owner_id)
    return [WebhookPublic.of(hook) for hook in hooks]


@router.get("/{webhook_id}", responses=error_responses(401, 404))
async def show_webhook(
    webhook_id: WebhookId, ctx: ContextDep, principal: AnyKeyDep
) -> WebhookPublic:
    """One of your webhooks, with how its deliveries go"""
    hook = await ctx.read(service.get, webhook_id=webhook_id, owner_id=principal.owner_id)
    return WebhookPublic.of(hook)


@router.patch("/{webhook_id}", responses=error_responses(401, 404))
async def change_webhook(
    webhook_id: WebhookId, body: WebhookChange, ctx: ContextDep, principal: AnyKeyDep
) -> WebhookPublic:
    """Pause a webhook, or turn it on again where it stopped"""
    hook = await ctx.write(
        service.set_enabled,
        webhook_id=webhook_id,
        owner_id=principal.owner_id,
        enabled=body.enabled,
        now=ctx.now(),
    )
    return WebhookPublic.of(hook)


@router.delete("/{webhook_id}", status_code=204, responses=error_responses(401, 404))
async def delete_webhook(webhook_id: WebhookId, ctx: ContextDep, principal: AnyKeyDep) -> Response:
    """Delete a webhook and its delivery log"""
    await ctx.write(service.delete, webhook_id=webhook_id, owner_id=principal.owner_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/test", responses=error_responses(401, 404))
async def test_webhook(
    webhook_id: WebhookId, ctx: ContextDep, principal: AnyKeyDep
) -> DeliveryPublic:
    """Post a signed `webhook.test` event now, and say how it went"""
    hook = await ctx.read(service.get, webhook_id=webhook_id, owner_id=principal.owner_id)
    return DeliveryPublic.model_validate(await ctx.dispatcher.send_test(hook))


@router.get("/{webhook_id}/deliveries", responses=error_responses(401, 404))
async def webhook_deliveries(
    webhook_id: WebhookId, ctx: ContextDep, principal: AnyKeyDep, limit: Limit = 50
) -> list[DeliveryPublic]:
    """A webhook's delivery attempts, newest first"""
    attempts = await ctx.read(
        service.log, webhook_id=webhook_id, owner_id=principal.owner_id, limit=limit
    )
    return [DeliveryPublic.model_validate(attempt) for attempt in attempts]


def document(app: FastAPI) -> None:
    """The delivery's body and headers, in the OpenAPI document's ``webhooks``."""

    @app.webhooks.post(
        "aitbc-event",
        summary="An event posted to your webhook",
        description="Headers: `X-Aitbc-Signature: t=<unix time>,v1=<hex>` (HMAC-SHA256 "
        "with the webhook's secret over `<t>.<body>`), `X-Aitbc-Event-Id` (de-duplicate "
        "by it: a delivery may come more than once), `X-Aitbc-Event-Type`, "
        "`X-Aitbc-Webhook-Id`. Answer 2xx within AITBC_WEBHOOK_TIMEOUT_SECONDS; anything "
        "else is retried, and later events wait for it.",
    )
    def aitbc_event(body: WebhookDeliveryBody) -> None:
        """Documentation only: the coordinator posts this; it serves no such route."""
