"""Who is calling: the API key's owner and role, found by the key's SHA-256.

Lookups are remembered per process for at most ``KEY_CACHE_SECONDS``: a busy client costs
one indexed read per key per interval instead of one per request, and a revoked key is
refused everywhere within that interval (at once on the process that revoked it)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from aitbc.store.lru import LRU
from aitbc.store.query import Query
from aitbc.store.store import Store

BOOTSTRAP_ADMIN_OWNER = "admin"
KEY_CACHE_SECONDS = 0.5
KEY_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    owner_id: str
    role: str
    key_id: str | None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_FIND_KEY = Query(
    "SELECT id, role, owner_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
)


class Authenticator:
    def __init__(
        self,
        store: Store,
        *,
        admin_key: str | None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._monotonic = monotonic
        self._admin_key = admin_key.encode() if admin_key else None
        self._cache: LRU[str, tuple[float, Principal]] = LRU(KEY_CACHE_ENTRIES)

    async def authenticate(self, secret: str) -> Principal | None:
        if self._admin_key is not None and hmac.compare_digest(secret.encode(), self._admin_key):
            return Principal(owner_id=BOOTSTRAP_ADMIN_OWNER, role="admin", key_id=None)
        digest = hash_key(secret)
        now = self._monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self._store.fetchrow(_FIND_KEY, digest)
        if row is None:
            self._cache.pop(digest, None)
            return None
        found = Principal(owner_id=row["owner_id"], role=row["role"], key_id=row["id"])
        self._cache[digest] = (now + KEY_CACHE_SECONDS, found)
        return found

    def forget(self) -> None:
        """Drop every remembered lookup (after a key was revoked on this process)."""
        self._cache.clear()
