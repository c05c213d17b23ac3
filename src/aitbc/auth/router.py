"""API key administration and `/v1/me`."""

from __future__ import annotations

from fastapi import Request

from aitbc.auth import service
from aitbc.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, Me, Role
from aitbc.auth.service import ApiKey
from aitbc.http.context import ContextDep
from aitbc.http.deps import AdminDep, AnyKeyDep
from aitbc.http.errors import error_responses
from aitbc.http.pagination import Limit, Offset
from aitbc.http.routing import APIRouter

router = APIRouter(prefix="/v1", tags=["auth"])


def _public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        key_id=key.id,
        prefix=key.prefix,
        role=key.role,  # type: ignore[arg-type]
        owner_id=key.owner_id,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@router.post("/admin/api-keys", status_code=201, responses=error_responses(401, 403, 409, 422))
async def create_api_key(body: ApiKeyCreate, ctx: ContextDep, _: AdminDep) -> ApiKeyCreated:
    """Create an API key (admin); an owner id has one role"""
    key, secret = await ctx.write(
        service.create_key, role=body.role, owner_id=body.owner_id, now=ctx.now()
    )
    return ApiKeyCreated(key=secret, key_id=key.id, role=body.role, owner_id=key.owner_id)


@router.get("/admin/api-keys", responses=error_responses(401, 403, 422))
async def list_api_keys(
    ctx: ContextDep,
    _: AdminDep,
    role: Role | None = None,
    owner_id: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ApiKeyPublic]:
    """List API keys without their secrets (admin)"""
    async with ctx.store.read() as conn:
        keys = await service.list_keys(
            conn, role=role, owner_id=owner_id, limit=limit, offset=offset
        )
    return [_public(k) for k in keys]


@router.delete("/admin/api-keys/{key_id}", responses=error_responses(401, 403, 404))
async def revoke_api_key(
    key_id: str, request: Request, ctx: ContextDep, _: AdminDep
) -> ApiKeyPublic:
    """Revoke an API key (admin); effective on the next request"""
    revoked = await ctx.write(service.revoke_key, key_id=key_id, now=ctx.now())
    # Other processes stop accepting the key when their short-lived lookups run out.
    request.app.state.authenticator.forget()
    return _public(revoked)


@router.get("/me", responses=error_responses(401))
async def me(principal: AnyKeyDep) -> Me:
    """Who am I"""
    return Me(owner_id=principal.owner_id, role=principal.role, key_id=principal.key_id)  # type: ignore[arg-type]
