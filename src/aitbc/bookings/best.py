"""Booking by criteria: the best GPU that meets every criterion, booked in one transaction.

The criteria are SQL conditions on a GPU (``g``, its miner ``m``) written once, in the order
a refusal names them; a model is first matched against the registered model keys, and when
it names one, the condition is that key, which an index walks by price. Booking reads the
best GPU that meets them all (cheapest, then the most uptime, then the best rated), locking
it (on PostgreSQL one that another transaction holds is skipped: many requests with the
same criteria spread over the GPUs instead of queueing for one), and books it through
``service.book`` in a savepoint; a GPU taken meanwhile, or whose price moved above the
caller's cap, is passed over for the next, up to ``TRIES``, never booked above the cap.
When no GPU meets them, the same conditions are read as columns for the best ``SCANNED``
GPUs, and the refusal names the first criterion that left none of them; ``explain`` shows
that reading without booking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aitbc.bookings import service
from aitbc.bookings.busy import BusyGpus
from aitbc.bookings.preemption import INTERRUPTIBLE, ON_DEMAND, Claim
from aitbc.config import Settings
from aitbc.errors import AppError, Conflict, PaymentRequired
from aitbc.gpus import status
from aitbc.gpus.bids import least_sql, winning_sql
from aitbc.gpus.naming import like_pattern
from aitbc.kit.money import units_text
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Params, Query, built

TRIES = 5  # GPUs tried in turn when one is taken meanwhile
EXPLAINED = 50  # GPUs an explanation lists
SCANNED = 5000  # GPUs read to name the criterion that left none
GANG_RULE = "the cheapest group of GPUs placed as asked, each meeting every criterion"
RULE = (
    "cheapest that meets every criterion (on demand: its price; interruptible: the lowest "
    "bid that wins it), then the most uptime over 7 days, then the best rated"
)


@dataclass(frozen=True, slots=True)
class Criteria:
    seconds: int
    start: datetime | None = None
    model: str | None = None
    memory_min: int | None = None
    region: str | None = None
    ai_model_key: str | None = None
    miner_id: str | None = None
    min_uptime_bp: int | None = None
    rental_type: str = ON_DEMAND
    bid_units: int | None = None  # interruptible
    max_price_units: int | None = None  # on demand: the cap


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str  # as the request names it
    wanted: str  # what it asks, for people
    sql: str  # true when a GPU meets it


def _criteria(
    c: Criteria, p: Params, window: tuple[str, str], share: Decimal, model_keys: Sequence[str]
) -> list[Criterion]:
    """The criteria in the order a refusal names them, with their parameters added to ``p``
    (which holds the heartbeat cutoff as $1); ``model_keys``, those the model matches."""
    start, end = window
    found = [
        Criterion("listed", "listed", "g.delisted_at IS NULL"),
        Criterion("online", "its miner online", f"NOT {status.offline_sql('$1')}"),
    ]
    if c.model:
        if len(model_keys) == 1:  # the GPUs of one model, by price: an index walk
            matched = f"g.model_key = {p.add(model_keys[0])}"
        else:
            matched = f"g.model_key LIKE {p.add(like_pattern(c.model))} ESCAPE '\\'"
        found.append(Criterion("model", c.model, matched))
    if c.memory_min is not None:
        found.append(
            Criterion("memory_min", f"{c.memory_min} GB", f"g.memory_gb >= {p.add(c.memory_min)}")
        )
    if c.region:
        found.append(Criterion("region", c.region, f"lower(g.region) = {p.add(c.region.lower())}"))
    if c.ai_model_key:
        key = p.add(c.ai_model_key)
        found.append(
            Criterion(
                "ai_model",
                c.ai_model_key,
                "EXISTS (SELECT 1 FROM gpu_ai_models a "
                f"WHERE a.gpu_id = g.id AND a.model_key = {key})",
            )
        )
    if c.miner_id:
        found.append(Criterion("miner_id", c.miner_id, f"g.miner_id = {p.add(c.miner_id)}"))
    if c.min_uptime_bp is not None:
        uptime = p.add(c.min_uptime_bp)
        found.append(
            Criterion(
                "min_uptime_pct", f"{c.min_uptime_bp / 100:.2f} %", f"g.uptime_7d_bp >= {uptime}"
            )
        )
    if c.rental_type == INTERRUPTIBLE:
        assert c.bid_units is not None
        bid = p.add(c.bid_units)
        found.append(Criterion("rental_type", "interruptible rentals", "g.interruptible"))
        least = least_sql(share)
        found.append(
            Criterion(
                "bid_per_hour",
                f"a bid of {units_text(c.bid_units)} at least the GPU's minimum and below "
                "its on-demand price",
                f"{least} <= {bid} AND g.effective_price_units > {bid}",
            )
        )
    elif c.max_price_units is not None:
        cap = p.add(c.max_price_units)
        found.append(
            Criterion(
                "max_price_per_hour",
                f"at most {units_text(c.max_price_units)} per hour",
                f"g.effective_price_units <= {cap}",
            )
        )
    outbids = p.add(Claim(c.rental_type, c.bid_units or 0).outbids)
    found.append(
        Criterion(
            "window",
            "free for the window (or held only by lower interruptible bids)",
            # LIMIT/OFFSET keeps PostgreSQL from turning this into an anti-join over every
            # open booking (which stale statistics make it choose): it stays a look-up by
            # the GPU's index for each candidate (a btree one: see status.OPEN_STATUS), paid for
            # every booked GPU the walk by price passes.
            "NOT EXISTS (SELECT 1 FROM bookings b WHERE b.gpu_id = g.id "
            f"AND b.status = {status.OPEN_STATUS} "
            f"AND b.start_time < {end} AND b.end_time > {start} AND NOT "
            f"(b.rental_type = 'interruptible' AND b.price_units <= {outbids}) "
            "LIMIT 1 OFFSET 0)",
        )
    )
    return found


def _rank_sql(c: Criteria, winning: str) -> str:
    """What "cheapest" means for the request, then uptime, then rating."""
    cost = winning if c.rental_type == INTERRUPTIBLE else "g.effective_price_units"
    return (
        f"{cost} ASC NULLS LAST, g.uptime_7d_bp DESC, "
        "g.rating_sum * 1.0 / NULLIF(g.review_count, 0) DESC NULLS LAST, g.id ASC"
    )


_MODEL_KEYS = Query("SELECT model_key FROM gpu_model_keys WHERE model_key LIKE $1 ESCAPE '\\'")


async def model_keys_of(conn: Conn, c: Criteria) -> list[str]:
    """The registered model keys the request's model matches (none without a model)."""
    if not c.model:
        return []
    return [row["model_key"] for row in await conn.fetch(_MODEL_KEYS, like_pattern(c.model))]


_COLUMNS = (
    "g.id, g.miner_id, g.model, g.memory_gb, g.region, g.effective_price_units, g.min_bid_units, "
    "g.interruptible, g.uptime_7d_bp, g.rating_sum, g.review_count"
)


@dataclass(frozen=True, slots=True)
class Found:
    rows: list[Row]
    criteria: list[Criterion]


async def read(
    conn: Conn,
    c: Criteria,
    *,
    now: datetime,
    settings: Settings,
    every: bool,
    limit: int,
    model_keys: Sequence[str],
    passed_over: Sequence[str] = (),
    lock: bool = True,
) -> Found:
    """The GPUs that meet every criterion, best first, but those ``passed_over``, each
    locked (``lock``; on PostgreSQL: one that another transaction is locking, most likely
    booking it, is skipped); or (``every``) all GPUs, best first, unlocked, with a column
    per criterion (``ok_<n>``) saying whether they meet it."""
    start = now if c.start is None else max(c.start.astimezone(UTC), now)
    end = start + timedelta(seconds=c.seconds)
    p = Params(status.cutoff(now, settings.heartbeat_timeout_seconds))
    window = (p.add(start), p.add(end))
    criteria = _criteria(c, p, window, settings.min_bid_share, model_keys)
    winning = winning_sql(*window, settings.min_bid_share)
    rank = _rank_sql(c, winning)
    columns = _COLUMNS
    if every:
        checks = ", ".join(
            f"CASE WHEN {k.sql} THEN 1 ELSE 0 END AS ok_{n}" for n, k in enumerate(criteria)
        )
        where = "true"
    else:
        checks = "1 AS ok"
        if lock:  # what booking the GPU reads with its lock (service.gpu_lock_of), read here
            columns += (
                f", g.model_key, m.last_heartbeat, {service.PRICE_UPDATED_AT} AS price_updated_at"
            )
        where = " AND ".join(f"({k.sql})" for k in criteria)
        if passed_over:
            where += f" AND g.id NOT IN ({p.add_all(passed_over)})"
    locking = ""
    if lock and not every and conn.dialect == "postgresql":
        locking = " FOR UPDATE OF g SKIP LOCKED"
    query = built(
        f"SELECT {columns}, {winning} AS winning, {checks} "
        f"FROM gpus g JOIN miners m ON m.id = g.miner_id WHERE {where} "
        f"ORDER BY {rank} LIMIT {p.add(limit)}{locking}"
    )
    return Found(await conn.fetch(query, *p.values), criteria)


def _request(c: Criteria, gpu_id: str, client_id: str) -> service.BookingRequest:
    return service.BookingRequest(
        gpu_id=gpu_id,
        client_id=client_id,
        seconds=c.seconds,
        start=c.start,
        max_price_units=c.max_price_units,
        rental_type=c.rental_type,
        bid_units=c.bid_units,
    )


async def book_best(
    conn: Conn,
    c: Criteria,
    *,
    client_id: str,
    now: datetime,
    settings: Settings,
    busy: BusyGpus | None = None,
) -> service.Booked:
    """Book the best GPU that meets every criterion, or refuse naming the criterion that
    left none."""
    # The read runs on the plan made once for any values (the store's connections use
    # generic plans): with the model matched to its key first and the window's look-up
    # kept off the GiST index, it walks the GPUs of the model and region by price as a plan
    # for the values would, without the planning (0.4 to 0.7 ms a booking; measured in
    # stop 26 on eight shapes of criteria, the generic plan as fast or faster in each).
    keys = await model_keys_of(conn, c)
    tried: list[str] = []
    while len(tried) < TRIES:
        found = await read(
            conn, c, now=now, settings=settings, every=False, limit=1, model_keys=keys,
            passed_over=tried,
        )  # fmt: skip
        if not found.rows:
            break
        tried.append(found.rows[0]["id"])
        wanted = _request(c, tried[-1], client_id)
        # On PostgreSQL the read locked the GPU's row; on SQLite the write lock is held.
        gpu = service.gpu_lock_of(found.rows[0])

        async def attempt(
            wanted: service.BookingRequest = wanted, gpu: service.GpuLock = gpu
        ) -> service.Booked:
            return await service.book(
                conn, wanted, now=now, settings=settings, busy=busy, locked=gpu
            )

        try:
            return await conn.attempt(attempt)
        except PaymentRequired:
            raise
        except AppError:
            continue  # taken meanwhile, or its price moved above the cap: the next
    if tried:
        raise Conflict(
            f"Each of the {len(tried)} GPUs that met every criterion was taken, or its "
            "price moved above your cap, as you asked; try again.",
            code="gpu_taken",
        )
    everything = await read(
        conn, c, now=now, settings=settings, every=True, limit=SCANNED, model_keys=keys
    )
    raise refusal(everything)


def refusal(found: Found) -> Conflict:
    left = found.rows
    for n, criterion in enumerate(found.criteria):
        kept = [row for row in left if row[f"ok_{n}"]]
        if not kept:
            before = f"of the {len(left)} GPUs the criteria before it left" if n else "at all"
            return Conflict(
                f"No GPU meets {criterion.name} ({criterion.wanted}) {before}.",
                code="no_gpu_matches",
            )
        left = kept
    return Conflict("No GPU meets every criterion.", code="no_gpu_matches")


def groups(rows: Sequence[Row], *, count: int, placement: str, rental_type: str) -> list[list[Row]]:
    """From GPUs best first, each miner's or region's (or, ``any``, the overall) best
    ``count``, the cheapest group first (ties: the one whose best GPU ranks first). A GPU
    without a region is in no region."""
    by: dict[Any, list[Row]] = {}
    for row in rows:
        if placement == "same_miner":
            key: Any = row["miner_id"]
        elif placement == "same_region":
            if not row["region"]:
                continue
            key = row["region"].lower()
        else:
            key = None
        members = by.setdefault(key, [])
        if len(members) < count:
            members.append(row)
    cost = "winning" if rental_type == INTERRUPTIBLE else "effective_price_units"
    full = [(sum(r[cost] or 0 for r in g), n, g) for n, g in enumerate(by.values())]
    return [g for _, _, g in sorted(full, key=lambda t: t[:2]) if len(g) == count]


async def explain(
    conn: Conn,
    c: Criteria,
    *,
    now: datetime,
    settings: Settings,
    count: int = 1,
    placement: str = "any",
) -> dict[str, Any]:
    """The criteria, how many GPUs each left, and the GPUs considered (best first) with
    whether each would be taken and why not; for a gang (``count`` > 1), the GPUs it would
    take (``chosen_gang``); nothing is booked."""
    keys = await model_keys_of(conn, c)
    found = await read(
        conn, c, now=now, settings=settings, every=True, limit=SCANNED, model_keys=keys
    )
    left = found.rows
    steps = []
    for n, criterion in enumerate(found.criteria):
        left = [row for row in left if row[f"ok_{n}"]]
        steps.append(
            {"criterion": criterion.name, "wanted": criterion.wanted, "gpus_left": len(left)}
        )
    chosen = left[0]["id"] if left else None
    gang = None
    if count > 1:
        found_groups = groups(left, count=count, placement=placement, rental_type=c.rental_type)
        gang = sorted(row["id"] for row in found_groups[0]) if found_groups else None
        chosen = None if gang is None else min(gang, key=[r["id"] for r in left].index)
    candidates = []
    for row in found.rows[:EXPLAINED]:
        failed = [k for n, k in enumerate(found.criteria) if not row[f"ok_{n}"]]
        if failed:
            verdict, why = "excluded", f"{failed[0].name}: not {failed[0].wanted}"
        elif row["id"] == chosen or (gang is not None and row["id"] in gang):
            verdict, why = "chosen", RULE if gang is None else f"{GANG_RULE} ({placement})"
        elif count > 1:
            verdict, why = "ranked_lower", "meets every criterion; not in the cheapest gang"
        else:
            verdict, why = "ranked_lower", f"meets every criterion; {chosen} ranks first"
        candidates.append(_candidate(row, verdict, why))
    shown = {"rule": RULE, "criteria": steps, "chosen": chosen, "candidates": candidates}
    return (shown | {"chosen_gang": gang}) if count > 1 else shown


def _candidate(row: Row, verdict: str, why: str) -> dict[str, Any]:
    price = row["effective_price_units"]
    winning = row["winning"]
    reviews = row["review_count"]
    return {
        "gpu_id": row["id"],
        "model": row["model"],
        "memory_gb": row["memory_gb"],
        "region": row["region"],
        "price_per_hour": units_text(price),
        "lowest_winning_bid": None if winning is None else units_text(winning),
        "uptime_7d_pct": f"{row['uptime_7d_bp'] / 100:.2f}",
        "average_rating": None if not reviews else f"{row['rating_sum'] / reviews:.2f}",
        "verdict": verdict,
        "reason": why,
    }
