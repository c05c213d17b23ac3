from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base
from aitbc.models.types import UTCDateTime


class PriceFigures:
    """What one computation of a model's price found: its base and current price, the
    multiplier and utilisation (basis points, 10,000 = 1.0), and the demand and supply
    behind them."""

    base_price_units: Mapped[int] = mapped_column(BigInteger)
    current_price_units: Mapped[int] = mapped_column(BigInteger)
    multiplier_bp: Mapped[int] = mapped_column(Integer)
    utilisation_bp: Mapped[int] = mapped_column(Integer)
    recent_bookings: Mapped[int] = mapped_column(Integer)
    supply: Mapped[int] = mapped_column(Integer)


class ModelPrice(PriceFigures, Base):
    """The market price of one GPU model (``kind='gpu'``) or AI model (``kind='ai'``)."""

    __tablename__ = "model_prices"
    __table_args__ = (
        UniqueConstraint("kind", "model_key", name="uq_model_prices_kind_key"),
        CheckConstraint("kind IN ('gpu', 'ai')", name="kind"),
        CheckConstraint("multiplier_bp > 0", name="multiplier_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    model_key: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PriceHistory(PriceFigures, Base):
    """Every recomputation of a model price, for charts."""

    __tablename__ = "price_history"
    __table_args__ = (Index("ix_price_history_model_at", "kind", "model_key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    model_key: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Quote(Base):
    """A price per hour promised to one client for one GPU until ``expires_at``."""

    __tablename__ = "quotes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    gpu_id: Mapped[str] = mapped_column(String(40), index=True)
    client_id: Mapped[str] = mapped_column(String(128))
    price_units: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
