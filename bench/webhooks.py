"""Webhook delivery throughput: events per second posted, signed and recorded, to a local
receiver that answers 200 at once (a uvicorn process of its own), by the delivery loop every
server process runs (``aitbc.dispatcher``), on PostgreSQL.

    .venv/bin/python bench/webhooks.py [--events 3000] [--owners 1 20]

For each owner count: that many owners, one webhook each, and ``--events`` events spread
over them, written through the outbox (``Conn.emit``) in transactions of 100; then rounds of
``Dispatcher.deliver_due`` until every webhook has delivered its share. One webhook is
delivered one event at a time (the next waits for the receiver's 2xx: per-object order), so
one owner measures the latency of a post and its two bookkeeping writes; many owners
measure how far the webhooks' side-by-side delivery goes. The ceiling printed beside: the
same receiver's posts per second from one sequential client, with no database at all."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import harness
import httpx
from run import database

from aitbc.config import Settings
from aitbc.dispatcher import Dispatcher
from aitbc.events.log import emit
from aitbc.kit.clock import SystemClock
from aitbc.migrate import upgrade
from aitbc.store.conn import Conn
from aitbc.store.store import Store
from aitbc.webhooks import service

RECEIVER = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})
"""


def _receiver_command(workdir: Path) -> list[str]:
    (workdir / "receiver_app.py").write_text(RECEIVER)
    return [
        str(harness.BIN / "uvicorn"), "receiver_app:app", "--app-dir", str(workdir),
        "--port", "{port}", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
    ]  # fmt: skip


async def _ceiling(url: str, posts: int) -> float:
    async with httpx.AsyncClient() as client:
        started = time.perf_counter()
        for _ in range(posts):
            await client.post(url, content=b'{"id":1}')
        return posts / (time.perf_counter() - started)


async def _measure(db: str, receiver: str, owners: int, events: int) -> float:
    settings = Settings(database_url=db, webhook_allow_private=True)
    store = Store(db, pool_size=20)
    await store.open()
    now = datetime.now(UTC)
    names = [f"bench-owner-{owners}-{i}" for i in range(owners)]
    for name in names:
        await store.write(
            lambda conn, name=name: service.create(
                conn, owner_id=name, url=receiver, types=None, now=now
            )
        )

    async def write(conn: Conn, first: int) -> None:
        for n in range(first, min(first + 100, events)):
            owner = names[n % owners]
            data = {"transaction_id": f"txn_{n}", "amount": "1.000000"}
            emit(conn, "account.deposit", subject_id=owner, data=data, owners=(owner,), at=now)

    for first in range(0, events, 100):
        await store.write(lambda conn, first=first: write(conn, first))
    dispatcher = Dispatcher(store, SystemClock(), settings)
    started = time.perf_counter()
    delivered = 0
    while delivered < events:
        done = await dispatcher.deliver_due()
        if done == 0:
            await asyncio.sleep(0.01)
        delivered += done
    took = time.perf_counter() - started
    await dispatcher.close()
    await store.close()
    return events / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--owners", type=int, nargs="+", default=[1, 20])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        db = database("postgresql", "aitbc_bench_webhooks", workdir)
        upgrade(db)
        with harness.server(_receiver_command(workdir), ready="/") as (url, _pid):
            receiver = url + "/hook"
            ceiling = asyncio.run(_ceiling(receiver, 2000))
            print(f"receiver alone, one sequential client: {ceiling:,.0f} posts/s")
            for owners in args.owners:
                rate = asyncio.run(_measure(db, receiver, owners, args.events))
                print(
                    f"{owners:>3} webhook(s), {args.events} events: {rate:,.0f} events/s "
                    f"({rate / ceiling:.0%} of the receiver alone)"
                )
        harness.drop_database(db)


if __name__ == "__main__":
    sys.exit(main())
