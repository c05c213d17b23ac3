from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response

from aitbc.accounts import alerts, service
from aitbc.accounts.schemas import (
    AccountPublic,
    DepositRequest,
    DepositResult,
    LedgerLine,
    LowBalanceAlert,
    LowBalanceAlertIn,
)
from aitbc.http import idempotency
from aitbc.http.context import ContextDep
from aitbc.http.deps import AdminDep, AnyKeyDep
from aitbc.http.errors import error_responses
from aitbc.http.idempotency import IdempotencyKey
from aitbc.http.pagination import Limit, Offset
from aitbc.http.routing import APIRouter
from aitbc.kit.money import from_units, maybe_units, to_units
from aitbc.store.conn import Conn

router = APIRouter(prefix="/v1", tags=["accounts"])


@router.post(
    "/admin/accounts/{owner_id}/deposit",
    status_code=201,
    response_model=DepositResult,
    responses=error_responses(401, 403, 404, 422),
    description="The owner must hold an API key or an account already (a typing mistake "
    "must not open an account nobody can use); `create=true` opens one for a new owner.",
)
async def deposit(
    owner_id: Annotated[str, Path(max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")],
    body: DepositRequest,
    request: Request,
    ctx: ContextDep,
    principal: AdminDep,
    idempotency_key: IdempotencyKey = None,
    create: Annotated[
        bool, Query(description="Open an account for an owner not seen before")
    ] = False,
) -> Response:
    """Credit an owner's account (admin)"""
    now, settings = ctx.now(), ctx.settings

    async def make(conn: Conn) -> DepositResult:
        transaction_id, balances = await service.deposit(
            conn,
            owner_id=owner_id,
            amount_units=to_units(body.amount),
            open_account=create,
            now=now,
            settings=settings,
        )
        account = AccountPublic.of(balances)
        return DepositResult(transaction_id=transaction_id, amount=body.amount, account=account)

    return await idempotency.respond_once(
        request, ctx.store, principal.owner_id, body, now, make, 201
    )


@router.get("/accounts/me", responses=error_responses(401))
async def my_account(ctx: ContextDep, principal: AnyKeyDep) -> AccountPublic:
    """Your balance and escrow"""
    balances = await ctx.read(
        service.view, owner_id=principal.owner_id, now=ctx.now(), settings=ctx.settings
    )
    return AccountPublic.of(balances)


@router.get("/accounts/me/ledger", responses=error_responses(401, 422))
async def my_ledger(
    ctx: ContextDep,
    principal: AnyKeyDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[LedgerLine]:
    """Your ledger entries, newest first"""
    entries = await ctx.read(
        service.ledger, owner_id=principal.owner_id, limit=limit, offset=offset
    )
    return [LedgerLine.of(entry) for entry in entries]


@router.get("/accounts/me/low-balance-alert", responses=error_responses(401))
async def my_alert(ctx: ContextDep, principal: AnyKeyDep) -> LowBalanceAlert:
    """The balance below which you get an account.low_balance event"""
    below = await ctx.read(alerts.alert_of, owner_id=principal.owner_id)
    return LowBalanceAlert(below=None if below is None else from_units(below))


@router.put(
    "/accounts/me/low-balance-alert",
    responses=error_responses(401),
    description="Once, when the balance is first below `below` (checked by the sweeper), "
    "and again only after it has been back at or above it. `below: null` removes the alert.",
)
async def set_my_alert(
    body: LowBalanceAlertIn, ctx: ContextDep, principal: AnyKeyDep
) -> LowBalanceAlert:
    """Be told (an account.low_balance event) when your balance falls below an amount"""
    units = maybe_units(body.below)
    await ctx.write(alerts.set_alert, owner_id=principal.owner_id, below_units=units)
    return LowBalanceAlert(below=None if units is None else from_units(units))
