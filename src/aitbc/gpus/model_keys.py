"""The registered GPU model keys, as this process last read them, for the list's model filter.

A model filter is a pattern matched against the few distinct model keys, and the GPUs are
then read key by key (``gpus.listing``). Matching here instead of in the database saves the
list a round trip. The keys table only grows (a key is never removed), so the copy is whole
exactly when the table still holds as many rows as it has; the list's own statement checks
that count, in its own snapshot, and a page that comes back empty for want of it is read
again with the keys read afresh."""

from __future__ import annotations

import re
from functools import lru_cache

from aitbc.gpus.naming import model_key
from aitbc.store.query import Query

ALL_KEYS = Query("SELECT model_key FROM gpu_model_keys")
# The condition a page carries while its keys came from the copy; $n is the copy's size.
STILL_WHOLE = "(SELECT count(*) FROM gpu_model_keys) = {0}"


@lru_cache(maxsize=256)
def _matcher(user_pattern: str) -> re.Pattern[str]:
    """A substring of the key, where ``*`` in the pattern matches anything (as LIKE with
    ``%`` at both ends would)."""
    return re.compile(".*".join(re.escape(part) for part in model_key(user_pattern).split("*")))


class ModelKeys:
    def __init__(self) -> None:
        self._keys: tuple[str, ...] | None = None

    @property
    def size(self) -> int:
        return len(self._keys or ())

    @property
    def loaded(self) -> bool:
        return self._keys is not None

    def replace(self, keys: list[str]) -> bool:
        """Take a fresh reading; whether it differs from the copy."""
        fresh = tuple(sorted(keys))
        changed = fresh != self._keys
        self._keys = fresh
        return changed

    def matching(self, user_pattern: str) -> list[str]:
        found = _matcher(user_pattern).search
        return [key for key in self._keys or () if found(key)]
