"""ORM models, one module per table. Importing this package registers every table."""

from aitbc.models.account import Account
from aitbc.models.api_key import ApiKey
from aitbc.models.base import Base
from aitbc.models.booking import Booking
from aitbc.models.gpu import Gpu, GpuAiModel
from aitbc.models.idempotency import IdempotencyRecord
from aitbc.models.ledger import LedgerEntry, LedgerTransaction
from aitbc.models.miner import Miner
from aitbc.models.order import Order, OrderEvent
from aitbc.models.pricing import ModelPrice, PriceHistory, Quote
from aitbc.models.review import Review, ReviewFlag

__all__ = [
    "Account",
    "ApiKey",
    "Base",
    "Booking",
    "Gpu",
    "GpuAiModel",
    "IdempotencyRecord",
    "LedgerEntry",
    "LedgerTransaction",
    "Miner",
    "ModelPrice",
    "Order",
    "OrderEvent",
    "PriceHistory",
    "Quote",
    "Review",
    "ReviewFlag",
]
