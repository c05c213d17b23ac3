from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base
from aitbc.models.types import UTCDateTime

# A big integer on PostgreSQL; on SQLite the rowid itself (the newest row is never pruned,
# so a number is never given twice).
EVENT_ID = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """Something a user would care about that happened, written in the transaction that made
    it happen (a transactional outbox): the event exists exactly when its change committed.
    Its public number rises in commit order; it is given once the event has committed
    (store.outbox) and kept with who may see it (``event_recipients``), so a reader that has
    seen number N has seen every event before it."""

    __tablename__ = "events"

    row_id: Mapped[int] = mapped_column(EVENT_ID, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(48))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    subject: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(128))
    # The object's state as the API shows it, as JSON text.
    data: Mapped[str] = mapped_column(Text)


class EventWaiting(Base):
    """A committed event not numbered yet, and whom it is for (PostgreSQL; store.outbox)."""

    __tablename__ = "events_waiting"

    row_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owners: Mapped[str] = mapped_column(Text)  # owner ids, comma-separated


class EventRecipient(Base):
    """Who may see an event, by its public number: one row per owner (a renter, a
    provider)."""

    __tablename__ = "event_recipients"
    # SQLite: the table is its key's tree (no second tree to write at every event).
    __table_args__ = ({"sqlite_with_rowid": False},)

    owner_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    row_id: Mapped[int] = mapped_column(BigInteger)
