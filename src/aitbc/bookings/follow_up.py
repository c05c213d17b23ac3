"""What follows a booking change once it has committed, registered in its unit of work
(``Conn.after_commit``) and run before the caller hears back:

- a booking of the same GPU whose time ran out is settled, in a transaction of its own: its
  client's and miner's accounts are locked only after this change's are released (the
  project's lock order: a GPU, then its bookings, then accounts);
- a model price the booking found stale is recomputed (at most one recomputation of a model
  at a time per process; the others leave it to the one running).

Both are the sweeper's work too, so a failure here only delays them."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from aitbc.bookings import settlement
from aitbc.config import Policy, Settings
from aitbc.pricing import market
from aitbc.store.conn import Conn, Writer

_REPRICING: set[str] = set()


def settle_due(conn: Conn, *, gpu_id: str, now: datetime, fee_bps: int, policy: Policy) -> None:
    async def settle(store: Writer) -> None:
        await store.write(
            partial(settlement.settle_due, now=now, fee_bps=fee_bps, policy=policy, gpu_id=gpu_id)
        )

    conn.after_commit(settle)


def reprice(conn: Conn, *, model_key: str, now: datetime, settings: Settings) -> None:
    async def recompute(store: Writer) -> None:
        if model_key in _REPRICING:
            return
        _REPRICING.add(model_key)
        try:
            await store.write(
                partial(
                    market.recompute_if_stale, kind="gpu", key=model_key, now=now, settings=settings
                )
            )
        finally:
            _REPRICING.discard(model_key)

    conn.after_commit(recompute)
