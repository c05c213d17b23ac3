"""The bounded caches (query texts, card tails, key lookups, metric labels) drop the entry
used longest ago when full, not everything at once."""

from __future__ import annotations

from aitbc.store.lru import LRU


def test_a_full_cache_drops_the_least_recently_used_entry() -> None:
    cache: LRU[str, int] = LRU(3)
    cache["a"], cache["b"], cache["c"] = 1, 2, 3
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache["d"] = 4
    assert list(cache) == ["c", "a", "d"]
    assert cache.get("b") is None


def test_setting_an_entry_again_counts_as_a_use() -> None:
    cache: LRU[str, int] = LRU(2)
    cache["a"], cache["b"] = 1, 2
    cache["a"] = 10
    cache["c"] = 3
    assert dict(cache) == {"a": 10, "c": 3}


def test_the_cache_never_holds_more_than_its_size() -> None:
    cache: LRU[int, int] = LRU(100)
    for i in range(1_000):
        cache[i] = i
        cache.get(i // 2)
    assert len(cache) == 100
    assert cache.get(999) == 999
    assert cache.get(0, -1) == -1
