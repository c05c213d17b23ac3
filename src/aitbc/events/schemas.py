from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from aitbc.events.feed import EventRecord


class EventPublic(BaseModel):
    id: int = Field(description="Rises with every event of the deployment, in commit order.")
    type: str = Field(examples=["booking.created"])
    at: datetime
    object: str = Field(description="What the event is about.", examples=["booking"])
    object_id: str
    data: dict[str, Any] = Field(
        description="The object's state as the API shows it (a booking as "
        "`GET /v1/bookings/{id}` does, a job as its client sees it...)."
    )

    @classmethod
    def of(cls, event: EventRecord) -> EventPublic:
        return cls.model_validate(event.body())  # the shape a webhook delivery posts


class EventPage(BaseModel):
    events: list[EventPublic]
    next_after: int = Field(
        description="The cursor for the next call (`after=`): the last event's id, or the "
        "cursor given when there was none."
    )
    more: bool = Field(description="Whether more events are waiting after this page.")
