"""Appending to the event log, from inside the transaction that makes the change
(``Conn.emit``; written just before the commit by store.outbox), and the catalogue of event
types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

from aitbc.store.conn import Conn
from aitbc.store.outgoing import Outgoing

# Every event type, with whom it goes to and when. The docs (docs/events.md) and the
# feed's ``types`` filter read this.
TYPES: dict[str, str] = {
    "booking.created": "A booking was made; one that begins at once is created active.",
    "booking.started": "A reservation's time began (renter, provider).",
    "booking.ending_soon": "A running booking ends within AITBC_EVENTS_ENDING_SOON_MINUTES.",
    "booking.extended": "A booking was extended (renter, provider).",
    "booking.released": "A booking was released before its end (renter, provider).",
    "booking.cancelled": "A booking ended before it began, or was refunded in full.",
    "booking.completed": "A booking ran to its end (renter, provider).",
    "booking.interrupted": "A booking ended because its GPU's miner stayed away.",
    "booking.preempted": "An interruptible booking was outbid: the notice, with when its GPU "
    "is taken (renter, provider).",
    "booking.bid_raised": "An interruptible booking's bid went up (renter, provider).",
    "gpu.offline": "A GPU's miner stopped sending heartbeats (provider, renters of the GPU).",
    "gpu.back": "A GPU's miner is back (provider, renters of the GPU).",
    "job.queued": "A job was submitted (its client).",
    "job.assigned": "A job was given a GPU (its client, the provider).",
    "job.finished": "A job finished with a result (its client, the provider).",
    "job.failed": "A job failed (its client, the provider).",
    "job.cancelled": "A job was cancelled (its client, the provider).",
    "job.expired": "A job waited past its time-to-live unassigned or unstarted (its client).",
    "job.requeued": "A job went back to the queue: its GPU was lost (client, provider).",
    "bid.filled": "A standing bid booked GPUs (its client).",
    "bid.expired": "A standing bid ran out unfilled (its client).",
    "account.deposit": "Money was deposited into the account (its owner).",
    "account.low_balance": "The spendable balance fell below the owner's alert (its owner).",
    "order.refunded": "Money of an order came back to the renter (renter, provider).",
    "review.posted": "A review was posted on a GPU (its provider).",
    "webhook.disabled": "A webhook failed for too long and was turned off (its owner).",
}
FAMILIES = sorted({name.split(".", 1)[0] for name in TYPES})


def event(
    *types: str,
    subject_id: str,
    data: Mapping[str, Any],
    owners: Iterable[str | None],
    at: datetime,
) -> list[Outgoing]:
    """The events ``types`` (one or more, in that order, with the same ``data``) about
    ``subject_id`` for ``owners``. A type's family names the object (a ``booking.*`` event
    is about a booking); ``data`` is the object as the API shows it."""
    text = orjson.dumps(data, default=str).decode()
    audience = tuple(dict.fromkeys(o for o in owners if o))
    made = []
    for type_ in types:
        assert type_ in TYPES, type_
        subject = type_.split(".", 1)[0]
        made.append(Outgoing(type_, at, subject, subject_id, text, audience))
    return made


def emit(
    conn: Conn,
    *types: str,
    subject_id: str,
    data: Mapping[str, Any],
    owners: Iterable[str | None],
    at: datetime,
) -> None:
    """Log ``event(*types, ...)`` as part of ``conn``'s transaction."""
    for made in event(*types, subject_id=subject_id, data=data, owners=owners, at=at):
        conn.emit(made)
