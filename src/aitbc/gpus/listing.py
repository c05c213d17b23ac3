"""Reading GPUs for the list and details endpoints, on the request's event loop.

Status is derived in the statement from the miner's last heartbeat and the booking windows,
so it is right whether or not any background job has run. Every filter and sort is served by
an index (``models.gpu``), so a page reads about as many rows as it returns at any registry
size; a model pattern is first matched against the few registered model keys (this
process's copy of them, ``gpus.model_keys``), then read key by key. A page's statement reads
only ids, revisions and what the clock decides; the rest of each GPU comes from its rendered
card (``gpus.cards``), read again only when it changed."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from aitbc.errors import Invalid
from aitbc.gpus import bids
from aitbc.gpus import status as rule
from aitbc.gpus.cards import CARD_COLUMNS, Cards, finish, render
from aitbc.gpus.filters import conditions
from aitbc.gpus.model_keys import ALL_KEYS, STILL_WHOLE, ModelKeys
from aitbc.gpus.naming import model_key
from aitbc.kit.money import units_text
from aitbc.store.conn import Conn
from aitbc.store.query import Params, Query, built
from aitbc.store.values import as_time, iso

# $1 is now, $2 the heartbeat cutoff; filters number their parameters from $3.
_CURRENT_BOOKING = rule.current_booking_sql("$1")
_NEXT_RESERVATION = (
    "SELECT min(b.start_time) FROM bookings b WHERE b.gpu_id = g.id "
    f"AND b.status = {rule.OPEN_STATUS} AND b.start_time > $1"
)
_OFFLINE = rule.offline_sql("$2")


def _live_columns(*, listed: bool = False, available: bool = False) -> str:
    """The columns every page reads, in the order ``_rendered`` unpacks them (a sort's
    cursor keys follow). What the page's conditions already decide is a constant, not
    computed row by row: ``listed``, no GPU is delisted; ``available``, none is offline or
    booked now."""
    delisted = "NULL" if listed else "g.delisted_at"
    offline = "0" if available else f"CASE WHEN {_OFFLINE} THEN 1 ELSE 0 END"
    booking_expires = "NULL" if available else f"({_CURRENT_BOOKING} LIMIT 1)"
    return (
        f"g.id, g.revision, {delisted} AS delisted_at, m.last_heartbeat, {offline} AS offline, "
        f"{booking_expires} AS booking_expires, ({_NEXT_RESERVATION}) AS next_reservation"
    )


_LIVE_COLUMNS = _live_columns()
_LISTED_COLUMNS = _live_columns(listed=True)
_AVAILABLE_COLUMNS = _live_columns(listed=True, available=True)
_FROM = "FROM gpus g JOIN miners m ON m.id = g.miner_id"
_STATUS_CONDITIONS = {
    "offline": _OFFLINE,
    "booked": f"NOT {_OFFLINE} AND EXISTS ({_CURRENT_BOOKING})",
    "available": f"NOT {_OFFLINE} AND NOT EXISTS ({_CURRENT_BOOKING})",
}
_DETAILS = Query(f"SELECT {_LIVE_COLUMNS} {_FROM} WHERE g.id = $3")


@dataclass(frozen=True, slots=True)
class Sort:
    order: str
    # The row's values a cursor carries (the GPU's id always last), and the condition for
    # "after them", with {0}, {1}... standing for their parameters.
    keys: tuple[str, ...]
    after: str


def _by_figure(key: str) -> Sort:
    """A sort by a figure computed per GPU (``{key}`` in the text until the statement puts
    its SQL there), then price and id."""
    order = f"{{{key}}}, g.effective_price_units, g.id"
    return Sort(order, (key, "effective_price_units", "id"), f"({order}) > ({{0}}, {{1}}, {{2}})")


SORTS = {
    "price": Sort(
        "g.effective_price_units, g.id",
        ("effective_price_units", "id"),
        "(g.effective_price_units, g.id) > ({0}, {1})",
    ),
    "rating": Sort(
        "g.rating_rank DESC, g.review_count DESC, g.id DESC",
        ("rating_rank", "review_count", "id"),
        "(g.rating_rank, g.review_count, g.id) < ({0}, {1}, {2})",
    ),
    "memory": Sort(
        "g.memory_gb DESC, g.effective_price_units, g.id",
        ("memory_gb", "effective_price_units", "id"),
        "(g.memory_gb < {0} OR (g.memory_gb = {0}"
        " AND (g.effective_price_units, g.id) > ({1}, {2})))",
    ),
    "uptime": Sort(
        "g.uptime_7d_bp DESC, g.effective_price_units, g.id",
        ("uptime_7d_bp", "effective_price_units", "id"),
        "(g.uptime_7d_bp < {0} OR (g.uptime_7d_bp = {0}"
        " AND (g.effective_price_units, g.id) > ({1}, {2})))",
    ),
    "newest": Sort(
        "g.created_at DESC, g.id DESC",
        ("created_at", "id"),
        "(g.created_at, g.id) < ({0}, {1})",
    ),
    # The lowest winning bid (gpus.bids) and the last clearing price are computed per GPU,
    # not indexed: these sorts read every GPU the filters leave. GPUs without the figure (no
    # bid wins now; never rented interruptibly) come last.
    "bid": _by_figure("winning"),
    "cleared": _by_figure("cleared"),
}

NO_FIGURE = 2**62  # the sorts' stand-in for a GPU without the figure
# The bid of the GPU's newest interruptible booking: the price it last cleared at.
LAST_CLEARED = (
    "(SELECT b.price_units FROM bookings b WHERE b.gpu_id = g.id "
    "AND b.rental_type = 'interruptible' ORDER BY b.created_at DESC, b.id DESC LIMIT 1)"
)


@dataclass(frozen=True, slots=True)
class GpuFilters:
    available: bool | None = None
    model: str | None = None
    memory_min: int | None = None
    price_max_units: int | None = None
    region: str | None = None
    status: str | None = None
    miner_id: str | None = None
    ai_model: str | None = None
    bid_max_units: int | None = None  # a bid of at most this wins it now
    cleared_max_units: int | None = None  # it last cleared at most at this


@dataclass(frozen=True, slots=True)
class Bidding:
    """What the lowest winning bid depends on: the least bid's share of the price and the
    preemption notice (a booking made now displaces what holds the GPU within it)."""

    share: Decimal
    notice_seconds: int


@dataclass(frozen=True, slots=True)
class Page:
    body: bytes
    next_cursor: str | None


def _moments(now: datetime, heartbeat_timeout: int) -> tuple[datetime, datetime]:
    return now, now - timedelta(seconds=heartbeat_timeout)


async def _rendered(conn: Conn, cards: Cards, rows: Sequence[Sequence[Any]]) -> list[bytes]:
    """Each row's GPU as JSON: its card (read and rendered when missing or out of date)
    finished with the row's clock-dependent columns. The hottest loop of the list."""
    found: list[bytes | None] = [cards.get(row[0], row[1]) for row in rows]
    if None in found:
        missing = [row[0] for row, card in zip(rows, found, strict=True) if card is None]
        marks = ", ".join(f"${i}" for i in range(1, len(missing) + 1))
        fresh = {}
        for full in await conn.fetch_values(
            built(f"SELECT {CARD_COLUMNS} FROM gpus g WHERE g.id IN ({marks})"), *missing
        ):
            gpu_id, revision, card = render(full)
            cards.put(gpu_id, revision, card)
            fresh[gpu_id] = card
        found = [card or fresh[row[0]] for row, card in zip(rows, found, strict=True)]
    return [
        finish(card or b"", row[2], row[4], row[5], row[3], row[6])
        for row, card in zip(rows, found, strict=True)
    ]


async def details(
    conn: Conn, cards: Cards, *, gpu_id: str, now: datetime, heartbeat_timeout: int
) -> bytes | None:
    """One GPU as JSON, or None when there is no such GPU."""
    rows = await conn.fetch_values(_DETAILS, *_moments(now, heartbeat_timeout), gpu_id)
    return (await _rendered(conn, cards, rows))[0] if rows else None


# -- the list ---------------------------------------------------------------------------


def encode_cursor(sort: str, row: Sequence[Any]) -> str:
    """The last row's sort keys (they follow the live columns, the GPU's id first of all)."""
    keys = SORTS[sort].keys
    found = [*row[_LIVE_COUNT : _LIVE_COUNT + len(keys) - 1], row[0]]
    values = [iso(v) if k == "created_at" else v for k, v in zip(keys, found, strict=True)]
    return base64.urlsafe_b64encode(orjson.dumps([sort, *values])).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str) -> list[Any]:
    invalid = Invalid(
        "cursor is not one this list gave out (or it was given for another sort).",
        code="invalid_cursor",
    )
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise invalid from exc
    keys = SORTS[sort].keys
    if not isinstance(decoded, list) or len(decoded) != len(keys) + 1 or decoded[0] != sort:
        raise invalid
    values = decoded[1:]
    for key, value in zip(keys, values, strict=True):
        expected = str if key in ("id", "created_at") else int
        if not isinstance(value, expected) or isinstance(value, bool):
            raise invalid
        if isinstance(value, int) and not -(2**63) <= value < 2**63:  # a 64-bit column's
            raise invalid
    try:
        return [as_time(v) if k == "created_at" else v for k, v in zip(keys, values, strict=True)]
    except (ValueError, OverflowError) as exc:
        raise invalid from exc


async def _read_keys(conn: Conn, model_keys: ModelKeys) -> bool:
    """Read the model keys afresh; whether they differ from the copy."""
    return model_keys.replace([row[0] for row in await conn.fetch_values(ALL_KEYS)])


_LIVE_COUNT = 7


async def list_page(
    conn: Conn,
    cards: Cards,
    model_keys: ModelKeys,
    *,
    now: datetime,
    heartbeat_timeout: int,
    filters: GpuFilters,
    bidding: Bidding,
    sort: str,
    limit: int,
    offset: int = 0,
    cursor: str | None = None,
) -> Page:
    statement = _Statement(now, heartbeat_timeout, filters, bidding, sort, limit, offset, cursor)
    if not filters.model:
        rows = await statement.rows(conn)
    else:
        keys = model_keys.matching(filters.model) if model_keys.loaded else []
        fresh = not keys  # none matched in the copy (or there is none): read the keys afresh
        if fresh:
            await _read_keys(conn, model_keys)
            keys = model_keys.matching(filters.model)
        in_copy = None if fresh else model_keys.size
        rows = await statement.rows(conn, keys, in_copy) if keys else []
        if not rows and not fresh and await _read_keys(conn, model_keys):
            # Empty because keys came after the copy was read: read the page again.
            keys = model_keys.matching(filters.model)
            rows = await statement.rows(conn, keys) if keys else []
    next_cursor = encode_cursor(sort, rows[-1]) if rows and len(rows) == limit else None
    gpus = await _rendered(conn, cards, rows)
    shown = statement.figures_shown()
    if shown:  # each GPU with its figures (the rows' last columns)
        gpus = [_with(gpu, shown, row[-len(shown) :]) for gpu, row in zip(gpus, rows, strict=True)]
    return Page(b"[" + b",".join(gpus) + b"]", next_cursor)


# The figures a list may be sorted or filtered by, and their names in each GPU shown.
_FIGURE_FIELDS = {"winning": b"lowest_winning_bid", "cleared": b"last_clearing_price"}


def _with(gpu: bytes, shown: Sequence[str], values: Sequence[int | None]) -> bytes:
    fields = b"".join(
        b',"%s":%s'
        % (_FIGURE_FIELDS[key], b"null" if v is None else b'"%s"' % units_text(v).encode())
        for key, v in zip(shown, values, strict=True)
    )
    return b"%s%s}" % (gpu[:-1], fields)


@dataclass(frozen=True, slots=True)
class _Statement:
    now: datetime
    heartbeat_timeout: int
    filters: GpuFilters
    bidding: Bidding
    sort: str
    limit: int
    offset: int
    cursor: str | None

    def figures_shown(self) -> list[str]:
        """The figures the list is sorted or filtered by, which each GPU then shows: its
        lowest winning bid ("winning"), the price it last cleared at ("cleared")."""
        keys = SORTS[self.sort].keys
        return [key for key, limit in self._limits().items() if limit is not None or key in keys]

    def _limits(self) -> dict[str, int | None]:
        """Each figure's filter: at most this."""
        return {"winning": self.filters.bid_max_units, "cleared": self.filters.cleared_max_units}

    def _figure_sql(self, key: str, params: Params) -> str:
        if key == "cleared":
            return LAST_CLEARED
        notice_end = bids.notice_end(self.now, self.bidding.notice_seconds)
        return bids.winning_sql("$1", params.add(notice_end), self.bidding.share)

    async def rows(
        self, conn: Conn, keys: Sequence[str] = (), keys_in_copy: int | None = None
    ) -> list[Sequence[Any]]:
        """The page's rows, for GPUs of the given model keys when the filter names a model;
        ``keys_in_copy`` (the size of the copy they were matched in) makes the statement
        return nothing unless the copy is still whole."""
        filters = self.filters
        params = Params(*_moments(self.now, self.heartbeat_timeout))
        where = []
        if keys:
            if len(keys) == 1:
                where.append(f"g.model_key = {params.add(keys[0])}")
            else:
                where.append(f"g.model_key IN ({params.add_all(keys)})")
            if keys_in_copy is not None:
                where.append(STILL_WHOLE.format(params.add(keys_in_copy)))
        live = _LISTED_COLUMNS
        if filters.status == "delisted":
            where.append("g.delisted_at IS NOT NULL")
            live = _LIVE_COLUMNS
        else:
            where.append("g.delisted_at IS NULL")
            if filters.status is not None:
                where.append(_STATUS_CONDITIONS[filters.status])
        if filters.available:
            where.append(_STATUS_CONDITIONS["available"])
        if live is _LISTED_COLUMNS and (filters.available or filters.status == "available"):
            live = _AVAILABLE_COLUMNS
        where += conditions(
            params,
            region=filters.region,
            memory_min=filters.memory_min,
            price_max_units=filters.price_max_units,
            miner_id=filters.miner_id,
            ai_model_key=model_key(filters.ai_model) if filters.ai_model else None,
        )
        order = SORTS[self.sort]
        after, order_by, shown, ranked = order.after, order.order, [], {}
        limits = self._limits()
        for key in self.figures_shown():
            figure = self._figure_sql(key, params)
            if limits[key] is not None:
                where.append(f"{figure} <= {params.add(limits[key])}")
            shown.append(figure)  # the rows' last columns: what the page shows
            ranked[key] = f"coalesce({figure}, {NO_FIGURE})"
            after, order_by = (t.replace(f"{{{key}}}", ranked[key]) for t in (after, order_by))
        if self.cursor is not None:
            names = [params.add(v) for v in decode_cursor(self.sort, self.cursor)]
            where.append(after.format(*names))
        sort_keys = (ranked.get(k, f"g.{k}") for k in order.keys[:-1])
        columns = ", ".join([live, *sort_keys, *shown])
        text = (
            f"SELECT {columns} {_FROM} WHERE {' AND '.join(where)} "
            f"ORDER BY {order_by} LIMIT {params.add(self.limit)}"
        )
        if self.offset:
            text += f" OFFSET {params.add(self.offset)}"
        return list(await conn.fetch_values(built(text), *params.values))
