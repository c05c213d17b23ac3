"""Webhook deliveries, run by every server process beside the sweeper: woken when events
are written (store.signals), and every second for retries that have come due. Each round
claims the webhooks with events waiting that no process holds (webhooks.delivery), and
posts their events in order, each signed (webhooks.signing), never holding a request or a
database connection while a receiver answers. At least once: an event is posted again
until a 2xx answer is recorded, so a receiver de-duplicates by the event's id."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import replace
from datetime import timedelta
from functools import partial

import httpx

from aitbc.config import Settings
from aitbc.kit import tasks
from aitbc.kit.clock import Clock
from aitbc.store.conn import Conn
from aitbc.store.signals import Signals
from aitbc.store.store import Store
from aitbc.store.values import iso
from aitbc.webhooks import delivery, targets
from aitbc.webhooks.service import Attempt, Webhook
from aitbc.webhooks.signing import HEADER, signature

log = logging.getLogger("aitbc.webhooks")
CLAIM_BATCH = 20
EVENTS_PER_ROUND = 50
RECORD_EVERY = 10
TICK_SECONDS = 1.0
GATHER_SECONDS = 0.05
USER_AGENT = "aitbc-webhooks/1"


class Dispatcher:
    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._timeout = settings.webhook_timeout_seconds
        # A lease outlives one post (each post renews it) with room to spare.
        self._lease = timedelta(seconds=2 * self._timeout + 5)
        self._give_up = timedelta(hours=settings.webhook_give_up_hours)
        # One client (its pool of connections) per TLS name: a connection is reused by its
        # address alone, and one checked for one name must not carry another's posts.
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def _http(self, tls_name: str = "") -> httpx.AsyncClient:
        client = self._clients.get(tls_name)
        if client is None:
            client = self._clients[tls_name] = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
                trust_env=False,
            )
        return client

    # -- one post -------------------------------------------------------------------------

    async def post(self, hook: Webhook, body: dict[str, object], attempt: int) -> Attempt:
        """Post ``body`` to the webhook, signed; what happened, to be logged."""
        content = json.dumps(body, separators=(",", ":")).encode()
        event_id = body.get("id")
        headers = {
            "Content-Type": "application/json",
            HEADER: signature(hook.secret, int(time.time()), content),
            "X-Aitbc-Event-Id": str(event_id),
            "X-Aitbc-Event-Type": str(body["type"]),
            "X-Aitbc-Webhook-Id": hook.id,
        }
        started, status, error = time.monotonic(), None, None
        try:
            # The whole post within the timeout (httpx's bounds each read and write alone):
            # the webhook's lease must outlive it.
            async with asyncio.timeout(self._timeout):
                allow = self._settings.webhook_allow_private
                addresses = await targets.check(hook.url, allow_private=allow)
                url, extra, extensions = targets.pinned(hook.url, addresses)
                response = await self._http(extensions.get("sni_hostname", "")).post(
                    url, content=content, headers=headers | extra, extensions=extensions
                )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:200]}"
        except targets.TargetRefused as exc:
            error = exc.detail
        except TimeoutError:
            error = f"No answer within {self._timeout:g} s"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        return Attempt(
            event_id=event_id if isinstance(event_id, int) else None,
            event_type=str(body["type"]),
            at=self._clock.now(),
            attempt=attempt,
            ok=error is None,
            status_code=status,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    async def send_test(self, hook: Webhook) -> Attempt:
        """Post a ``webhook.test`` event now and log it (the owner's ``test``)."""
        body: dict[str, object] = {
            "id": None,
            "type": "webhook.test",
            "at": iso(self._clock.now()),
            "object": "webhook",
            "object_id": hook.id,
            "data": {"webhook_id": hook.id, "url": hook.url},
        }
        done = await self.post(hook, body, 1)

        async def record(conn: Conn) -> None:
            await done.record(conn, hook.id)

        await self._store.write(record)
        return done

    # -- rounds ---------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """One round: claim the webhooks with events waiting and deliver them, side by
        side. Returns how many events were delivered."""
        async with self._store.read() as conn:
            if not await delivery.any_due(conn, now=self._clock.now()):
                return 0
        token = secrets.token_hex(8)
        hooks = await self._store.write(
            partial(
                delivery.claim,
                now=self._clock.now(),
                lease=self._lease,
                token=token,
                limit=CLAIM_BATCH,
            )
        )
        if not hooks:
            return 0
        done = await asyncio.gather(*(self._deliver(hook, token) for hook in hooks))
        return sum(done)

    async def _deliver(self, hook: Webhook, token: str) -> int:
        """The webhook's waiting events in order, until one fails or the lease is lost. What
        was delivered is recorded every ``RECORD_EVERY`` events or third of the lease (and
        before a failure and at the end): a process that dies in between has those posted
        again (at least once)."""
        delivered, recorded = 0, hook.cursor
        posted: list[Attempt] = []  # delivered, not recorded yet
        # Recorded often enough that the lease (renewed by each record) never runs out.
        renew_after, renewed = self._lease.total_seconds() / 3, time.monotonic()
        try:
            async with self._store.read() as conn:
                events, through = await delivery.pending(conn, hook, limit=EVENTS_PER_ROUND)
            for event in events:
                attempt = await self.post(hook, event.body(), hook.failures + 1)
                if not attempt.ok:
                    if posted and not await self._advance(hook, token, posted):
                        return delivered
                    delivered += len(posted)
                    await self._store.write(
                        partial(
                            delivery.failed,
                            hook=hook,
                            token=token,
                            attempt=attempt,
                            give_up=self._give_up,
                            first_retry=self._settings.webhook_retry_seconds,
                        )
                    )
                    return delivered
                posted.append(attempt)
                hook = _moved(hook, event.id)
                if len(posted) == RECORD_EVERY or time.monotonic() - renewed > renew_after:
                    if not await self._advance(hook, token, posted):
                        return delivered
                    delivered, recorded, posted = delivered + len(posted), hook.cursor, []
                    renewed = time.monotonic()
            if len(events) < EVENTS_PER_ROUND and through > hook.cursor:
                hook = _moved(hook, through)  # past the types it does not want
            if hook.cursor != recorded and not await self._advance(hook, token, posted):
                return delivered
            delivered += len(posted)
            await self._store.write(partial(delivery.release, hook=hook, token=token))
        except Exception:  # the lease runs out and the next round tries again
            log.exception("delivering to webhook %s failed", hook.id)
        return delivered

    async def _advance(self, hook: Webhook, token: str, attempts: list[Attempt]) -> bool:
        """Record ``attempts`` and move the cursor to the hook's; False: the lease is lost."""
        return await self._store.write(
            partial(
                delivery.advanced,
                hook=hook,
                token=token,
                cursor=hook.cursor,
                attempts=attempts,
                now=self._clock.now(),
                lease=self._lease,
            )
        )

    def run_once(self) -> int:
        """Rounds until nothing is left to deliver, from a thread with no event loop running
        (tests, tools); how many events were delivered."""

        async def rounds() -> int:
            total = 0
            try:
                while done := await self.deliver_due():
                    total += done
                return total
            finally:
                await self.close()
                await self._store.leave_loop()

        return asyncio.run(rounds())

    # -- the loop -------------------------------------------------------------------------

    def wake(self) -> None:
        """Events were written: deliver now (safe from any thread)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self, signals: Signals) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        signals.on_events(self.wake)
        self._task = self._loop.create_task(self._run())

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=TICK_SECONDS)
                # Events come in bursts: one round for the burst, not one per commit.
                await asyncio.sleep(GATHER_SECONDS)
            self._wake.clear()
            try:
                while await self.deliver_due():
                    pass
            except Exception:  # tried again on the next tick
                log.exception("delivering webhooks failed")

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def stop(self) -> None:
        await tasks.cancel(self._task)
        self._task = None
        await self.close()


def _moved(hook: Webhook, cursor: int) -> Webhook:
    return replace(hook, cursor=cursor, failures=0, failing_since=None)
