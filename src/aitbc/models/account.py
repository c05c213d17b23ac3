from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base
from aitbc.models.types import UTCDateTime

MAIN = "main"
ESCROW = "escrow"
EXTERNAL = "external"
PLATFORM_OWNER = "platform"
WORLD_OWNER = "world"


class Account(Base):
    """A balance of one owner. ``main`` is spendable, ``escrow`` holds prepaid bookings.

    The single ``external`` account is the outside world: deposits come from it, so every
    transaction sums to zero and it alone may go negative."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("owner_id", "kind", name="uq_accounts_owner_kind"),
        CheckConstraint("kind IN ('main', 'escrow', 'external')", name="kind"),
        CheckConstraint("balance_units >= 0 OR kind = 'external'", name="non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    balance_units: Mapped[int] = mapped_column(BigInteger, default=0)


class BalanceAlert(Base):
    """An owner's low-balance alert: an ``account.low_balance`` event once the spendable
    balance falls below ``below_units`` (again after it has been back above)."""

    __tablename__ = "balance_alerts"

    owner_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    below_units: Mapped[int] = mapped_column(BigInteger)
    noticed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
