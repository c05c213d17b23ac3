"""Request-scoped dependencies: the unit-of-work session, the clock, settings and the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from aitbc.auth import service as auth_service
from aitbc.config import Settings
from aitbc.db import Database, finish
from aitbc.errors import Forbidden, Unauthorized
from aitbc.kit.clock import Clock

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncIterator[Session]:
    """Reads get a plain transaction; anything else a write transaction that commits on
    success. Creating a session does no I/O; its first statement runs in the endpoint's
    thread, and its end runs on a thread pool of its own (``app.state.finish_limiter``):
    a request holding database locks never waits behind requests waiting for those locks."""
    db: Database = request.app.state.db
    limiter = request.app.state.finish_limiter
    write = request.method not in _READ_METHODS
    session = db.session(write=write)
    try:
        yield session
    except BaseException:
        await to_thread.run_sync(partial(finish, session, commit=False), limiter=limiter)
        raise
    await to_thread.run_sync(partial(finish, session, commit=write), limiter=limiter)


# Trivial dependencies are async so they run on the event loop, not in the thread pool.
async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


@dataclass(frozen=True, slots=True)
class Principal:
    owner_id: str
    role: str
    key_id: str | None


def _authenticate(db: Database, raw: str, admin_key: str | None) -> Principal | None:
    # A short read of its own, not the request's session: a write request must not take the
    # database's write lock before its endpoint runs.
    with db.session(write=False) as session:
        found = auth_service.authenticate(session, raw, bootstrap_admin_key=admin_key)
    if found is None:
        return None
    return Principal(owner_id=found.owner_id, role=found.role, key_id=found.key_id)


async def get_principal(
    request: Request,
    settings: SettingsDep,
    x_api_key: Annotated[
        str | None,
        Header(
            alias="X-Api-Key",
            description="API key. Empty or absent means anonymous.",
        ),
    ] = None,
) -> Principal | None:
    raw = (x_api_key or "").strip()
    if not raw:
        return None
    found = await run_in_threadpool(_authenticate, request.app.state.db, raw, settings.admin_key)
    if found is None:
        raise Unauthorized("The API key is unknown or revoked.", code="invalid_api_key")
    return found


OptionalPrincipal = Annotated[Principal | None, Depends(get_principal)]
# For routers whose reads are public: a key that is sent must still be valid.
CheckKey = Depends(get_principal)


def require_roles(*roles: str):  # type: ignore[no-untyped-def]
    allowed = frozenset(roles)

    async def _require(principal: OptionalPrincipal) -> Principal:
        if principal is None:
            raise Unauthorized("This endpoint needs an API key.", code="authentication_required")
        if principal.role not in allowed:
            raise Forbidden(
                f"This endpoint needs a {' or '.join(sorted(allowed))} key; "
                f"yours is a {principal.role} key.",
                code="wrong_role",
            )
        return principal

    return Depends(_require)


AdminDep = Annotated[Principal, require_roles("admin")]
ClientDep = Annotated[Principal, require_roles("client")]
MinerDep = Annotated[Principal, require_roles("miner")]
MinerOrAdminDep = Annotated[Principal, require_roles("miner", "admin")]
ClientOrAdminDep = Annotated[Principal, require_roles("client", "admin")]
AnyKeyDep = Annotated[Principal, require_roles("client", "miner", "admin")]
