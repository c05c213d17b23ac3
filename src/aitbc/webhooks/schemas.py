from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from aitbc.kit.copying import copied
from aitbc.kit.types import RequestModel
from aitbc.webhooks.service import Webhook
from aitbc.webhooks.targets import MAX_URL


class WebhookCreate(RequestModel):
    url: str = Field(max_length=MAX_URL, examples=["https://example.com/aitbc/events"])
    types: str | None = Field(
        default=None,
        max_length=1024,
        description="Comma-separated event types or families (`booking.*`); none: all",
    )


class WebhookChange(RequestModel):
    enabled: bool = Field(
        description="true: deliver again, from the event it stopped at; false: pause"
    )


class WebhookPublic(BaseModel):
    webhook_id: str
    url: str
    types: list[str] = Field(description="The event types it gets; empty: all")
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    delivered: int = Field(description="Events delivered so far")
    last_event_id: int = Field(description="The last of your events it has handled")
    failures: int = Field(description="Failed attempts in a row (0 when healthy)")
    failing_since: datetime | None
    next_attempt_at: datetime | None = Field(description="When it is retried, if failing")
    last_error: str | None

    @classmethod
    def of(cls, hook: Webhook) -> Self:
        return copied(
            cls,
            hook,
            webhook_id=hook.id,
            types=list(hook.types),
            last_event_id=hook.cursor,
            next_attempt_at=hook.next_attempt_at if hook.failures else None,
        )


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="Signs every delivery (X-Aitbc-Signature). Shown this once: keep it."
    )


class DeliveryPublic(BaseModel):
    """One attempt of the delivery log (``webhooks.service.Attempt``)."""

    model_config = ConfigDict(from_attributes=True)

    event_id: int | None = Field(description="None for a test")
    event_type: str
    at: datetime
    attempt: int
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDeliveryBody(BaseModel):
    """What each delivery posts (JSON), with the headers X-Aitbc-Signature
    (`t=<unix time>,v1=<HMAC-SHA256 hex of "<t>.<body>">`), X-Aitbc-Event-Id,
    X-Aitbc-Event-Type and X-Aitbc-Webhook-Id. The same shape as a feed event."""

    id: int | None
    type: str
    at: datetime
    object: str
    object_id: str
    data: dict[str, Any]
