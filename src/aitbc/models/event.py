from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base
from aitbc.models.types import UTCDateTime

# A big integer on PostgreSQL; on SQLite the rowid itself (AUTOINCREMENT: never reused).
EVENT_ID = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """Something a user would care about that happened, written in the transaction that made
    it happen (a transactional outbox): the event exists exactly when its change committed.
    Ids rise in commit order (store.outbox), so a reader that has seen id N has seen every
    event before it."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_at", "at"),
        Index("ix_events_subject", "subject_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EVENT_ID, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(48))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    subject: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(128))
    # The object's state as the API shows it, as JSON text.
    data: Mapped[str] = mapped_column(Text)


class EventRecipient(Base):
    """Who may see an event: one row per owner (a renter, a provider)."""

    __tablename__ = "event_recipients"
    __table_args__ = (Index("ix_event_recipients_event", "event_id"),)

    owner_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[int] = mapped_column(EVENT_ID, primary_key=True)
