"""ORM models, one module per table. Importing this package registers every table."""

from aitbc.models.account import Account, BalanceAlert
from aitbc.models.api_key import ApiKey
from aitbc.models.base import Base
from aitbc.models.bid import Bid
from aitbc.models.booking import Booking
from aitbc.models.chore import Chore
from aitbc.models.event import Event, EventRecipient, EventWaiting
from aitbc.models.gang import Gang
from aitbc.models.gpu import Gpu, GpuAiModel, GpuModelKey
from aitbc.models.idempotency import IdempotencyRecord
from aitbc.models.job import Job
from aitbc.models.ledger import LedgerEntry, LedgerTransaction
from aitbc.models.miner import Miner, MinerPresence
from aitbc.models.offer import Offer
from aitbc.models.order import Order, OrderEvent
from aitbc.models.pricing import ModelPrice, PriceHistory, Quote
from aitbc.models.review import Review, ReviewFlag
from aitbc.models.webhook import Webhook, WebhookDelivery

__all__ = [
    "Account",
    "ApiKey",
    "BalanceAlert",
    "Base",
    "Bid",
    "Booking",
    "Chore",
    "Event",
    "EventRecipient",
    "EventWaiting",
    "Gang",
    "Gpu",
    "GpuAiModel",
    "GpuModelKey",
    "IdempotencyRecord",
    "Job",
    "LedgerEntry",
    "LedgerTransaction",
    "Miner",
    "MinerPresence",
    "ModelPrice",
    "Offer",
    "Order",
    "OrderEvent",
    "PriceHistory",
    "Quote",
    "Review",
    "ReviewFlag",
    "Webhook",
    "WebhookDelivery",
]
