"""Request-scoped dependencies: the caller and its role (the application's parts are
``http.context``'s)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from aitbc.auth.principal import Authenticator, Principal
from aitbc.errors import Forbidden, Unauthorized

API_KEY_DESCRIPTION = "API key. Empty or absent means anonymous."
# For endpoints that document their parameters themselves (http.params).
API_KEY_PARAMETER = {
    "name": "X-Api-Key",
    "in": "header",
    "required": False,
    "description": API_KEY_DESCRIPTION,
    "schema": {"type": "string"},
}


async def caller(request: Request) -> Principal | None:
    """The key's owner, None when anonymous; an unknown or revoked key is refused."""
    raw = request.headers.get("x-api-key", "").strip()
    if not raw:
        return None
    authenticator: Authenticator = request.app.state.authenticator
    found = await authenticator.authenticate(raw)
    if found is None:
        raise Unauthorized("The API key is unknown or revoked.", code="invalid_api_key")
    return found


async def get_principal(
    request: Request,
    x_api_key: Annotated[
        str | None, Header(alias="X-Api-Key", description=API_KEY_DESCRIPTION)
    ] = None,
) -> Principal | None:
    return await caller(request)


OptionalPrincipal = Annotated[Principal | None, Depends(get_principal)]
# For routers whose reads are public: a key that is sent must still be valid.
CheckKey = Depends(get_principal)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def check_role(principal: Principal | None, allowed: frozenset[str]) -> Principal:
    if principal is None:
        raise Unauthorized("This endpoint needs an API key.", code="authentication_required")
    if principal.role not in allowed:
        wanted = " or ".join(sorted(allowed))
        raise Forbidden(
            f"This endpoint needs {_article(wanted)} {wanted} key; "
            f"yours is {_article(principal.role)} {principal.role} key.",
            code="wrong_role",
        )
    return principal


async def caller_with_role(request: Request, *roles: str) -> Principal:
    """For endpoints that read their headers themselves (http.params)."""
    return check_role(await caller(request), frozenset(roles))


def require_roles(*roles: str):  # type: ignore[no-untyped-def]
    allowed = frozenset(roles)

    async def _require(principal: OptionalPrincipal) -> Principal:
        return check_role(principal, allowed)

    return Depends(_require)


AdminDep = Annotated[Principal, require_roles("admin")]
ClientDep = Annotated[Principal, require_roles("client")]
MinerDep = Annotated[Principal, require_roles("miner")]
MinerOrAdminDep = Annotated[Principal, require_roles("miner", "admin")]
ClientOrAdminDep = Annotated[Principal, require_roles("client", "admin")]
AnyKeyDep = Annotated[Principal, require_roles("client", "miner", "admin")]
