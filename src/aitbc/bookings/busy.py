"""GPUs this process recently found booked: a hint for ``service.book``, never an answer.

A booking of a GPU in this set first looks, without the GPU's row lock, for an open booking
that covers the requested start; finding one, it refuses at once. A crowd asking for one
booked GPU is then refused in parallel instead of one request at a time behind the row lock,
while a booking of any other GPU takes no extra step. The look reads committed rows, so its
refusal is exact as of that read (a release committed a moment later is a later event); when
it finds nothing, the booking goes on under the lock as always."""

from __future__ import annotations

import time

KEEP_SECONDS = 60.0
MAX_GPUS = 4096


class BusyGpus:
    def __init__(self, *, keep_seconds: float = KEEP_SECONDS, max_gpus: int = MAX_GPUS) -> None:
        self._seen: dict[str, float] = {}
        self._keep = keep_seconds
        self._max = max_gpus

    def __contains__(self, gpu_id: str) -> bool:
        seen = self._seen.get(gpu_id)
        if seen is None:
            return False
        if time.monotonic() - seen > self._keep:
            del self._seen[gpu_id]
            return False
        return True

    def add(self, gpu_id: str) -> None:
        self._seen.pop(gpu_id, None)
        if len(self._seen) >= self._max:
            del self._seen[next(iter(self._seen))]  # the one seen longest ago
        self._seen[gpu_id] = time.monotonic()
