from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from aitbc.accounts.service import Balances, LedgerEntry
from aitbc.kit.copying import copied
from aitbc.kit.money import AmountIn, MoneyOut
from aitbc.kit.types import RequestModel


class DepositRequest(RequestModel):
    amount: AmountIn


class AccountPublic(BaseModel):
    owner_id: str
    currency: str = "AITBC"
    balance: MoneyOut = Field(description="Spendable now.")
    escrow: MoneyOut = Field(description="Held for bookings that have not ended.")
    unsettled: MoneyOut = Field(
        description="Part of the above from bookings that ended but are not yet in the "
        "ledger; the sweeper or the next change to the GPU posts it."
    )

    @classmethod
    def of(cls, balances: Balances) -> AccountPublic:
        return copied(cls, balances)


class DepositResult(BaseModel):
    transaction_id: str
    amount: MoneyOut
    account: AccountPublic


class LedgerLine(BaseModel):
    entry_id: int
    transaction_id: str
    kind: str
    account: str
    amount: MoneyOut
    booking_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, entry: LedgerEntry) -> LedgerLine:
        return copied(cls, entry)


class LowBalanceAlertIn(RequestModel):
    below: AmountIn | None = Field(
        description="An account.low_balance event once the balance is below this (null: none)"
    )


class LowBalanceAlert(BaseModel):
    below: MoneyOut | None = Field(description="The alert's balance (null: no alert)")
