"""An event on its way to the log (store.outbox), and the channel that tells of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

CHANNEL = "aitbc_events"
EVERYONE = "*"  # a notification for more owners than a payload holds
EVENTS_LOCK = 1634301027  # 'aitb' + 3
PAYLOAD_BYTES = 7000


@dataclass(frozen=True, slots=True)
class Outgoing:
    type: str
    at: datetime
    subject: str
    subject_id: str
    data: str  # the object as the API shows it, as JSON
    owners: tuple[str, ...]


def payload(owners: Sequence[str]) -> str:
    """Whom a notification concerns: their owner ids, or ``EVERYONE`` when they would not
    fit in one."""
    text = ",".join(sorted(set(owners)))
    return text if len(text.encode()) <= PAYLOAD_BYTES else EVERYONE
