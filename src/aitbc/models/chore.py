from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base
from aitbc.models.types import UTCDateTime


class Chore(Base):
    """When a periodic chore of the sweepers (refreshing uptime, pruning history) was last
    done, by any process of any node: the process that moves ``done_at`` on, in the
    transaction that does the chore, is the one that does it."""

    __tablename__ = "chores"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    done_at: Mapped[datetime] = mapped_column(UTCDateTime())
