"""GPUs this process recently found booked: a hint for ``service.book``, never an answer.

A booking of a GPU in this set first looks, without the GPU's row lock, for an open booking
that covers the requested start; finding one, it refuses at once. A crowd asking for one
booked GPU is then refused in parallel instead of one request at a time behind the row lock,
while a booking of any other GPU takes no extra step. The look reads committed rows, so its
refusal is exact as of that read (a release committed a moment later is a later event); when
it finds nothing, the booking goes on under the lock as always."""

from __future__ import annotations

from cachetools import TTLCache

KEEP_SECONDS = 60.0
MAX_GPUS = 4096


class BusyGpus:
    """GPUs found booked in the last ``keep_seconds``, at most ``max_gpus`` of them (the one
    seen longest ago dropped first)."""

    def __init__(self, *, keep_seconds: float = KEEP_SECONDS, max_gpus: int = MAX_GPUS) -> None:
        self._seen: TTLCache[str, bool] = TTLCache(maxsize=max_gpus, ttl=keep_seconds)

    def __contains__(self, gpu_id: str) -> bool:
        return gpu_id in self._seen

    def add(self, gpu_id: str) -> None:
        self._seen.pop(gpu_id, None)  # seen again: the newest
        self._seen[gpu_id] = True
