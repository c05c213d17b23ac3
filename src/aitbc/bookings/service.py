"""Booking a GPU, releasing it early and extending it, in domain terms (ids, seconds,
integer units): each is one transaction that holds the GPU's row lock, so requests for one
GPU are serialised across server processes. The HTTP router, job assignment and bid filling
all book through ``book``.

None of these settles another booking that has run out on the same GPU: it is settled after
the commit in a transaction of its own (bookings.follow_up). The one booking a booking
settles is an interruptible one it displaces (bookings.preemption): posted together with its
own escrow by one ``post_many``, which locks every account of both in one order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aitbc.auth.principal import Principal
from aitbc.bookings import announce, follow_up, lifecycle, preemption, riders, settlement
from aitbc.bookings.busy import BusyGpus
from aitbc.bookings.preemption import INTERRUPTIBLE, ON_DEMAND, Claim, Displaced
from aitbc.bookings.records import COLUMNS, FROM, BookingRecord
from aitbc.config import Policy, Settings
from aitbc.errors import AppError, Conflict, Invalid, NotFound, PaymentRequired
from aitbc.gpus import status as rule
from aitbc.gpus.bids import least_bid, winning_bid
from aitbc.gpus.matching import Constraints, candidates
from aitbc.kit.ids import new_id
from aitbc.kit.money import divide_units, units_text
from aitbc.ledger.postings import Along, Leg, Posting, post, post_many
from aitbc.models.account import ESCROW, MAIN
from aitbc.pricing.market import is_stale
from aitbc.store import outbox
from aitbc.store.conn import Conn, Row
from aitbc.store.outgoing import Outgoing
from aitbc.store.query import Query
from aitbc.store.values import as_time, iso, maybe_time

MAX_RESERVATION_AHEAD = timedelta(days=90)
# A start this far in the past is taken as "now" (client clocks drift).
START_TOLERANCE = timedelta(minutes=5)


def cost_units(price_units: int, seconds: int) -> int:
    return divide_units(price_units * seconds, 3600)


@dataclass(frozen=True, slots=True)
class BookingRequest:
    gpu_id: str
    client_id: str
    seconds: int
    start: datetime | None = None  # None: now
    job_id: str | None = None
    max_price_units: int | None = None
    quote_id: str | None = None
    # The most the booking may cost: it is shortened to what that buys at the price.
    max_cost_units: int | None = None
    rental_type: str = ON_DEMAND  # or INTERRUPTIBLE, paying ``bid_units`` per hour
    bid_units: int | None = None
    gang_id: str | None = None  # one of a gang's bookings (bookings.gangs)

    @property
    def outbids(self) -> int:
        """The highest interruptible bid this booking would displace."""
        return Claim(self.rental_type, self.bid_units or 0).outbids


@dataclass(frozen=True, slots=True)
class GpuLock:
    """What a booking reads with the GPU's row lock."""

    miner_id: str
    price_units: int
    model_key: str
    price_updated_at: datetime | None
    heartbeat: datetime
    interruptible: bool  # whether its provider lets it be rented interruptibly
    min_bid_units: int | None  # the provider's least bid; None: the setting's share


@dataclass(frozen=True, slots=True)
class Booked:
    booking: BookingRecord
    gpu: GpuLock
    shown: str  # the booking as the API shows it at its making, as JSON (its event's data)
    displaced: tuple[Displaced, ...] = ()  # the interruptible bookings it preempted


# When the price of the GPU ``g``'s model was last computed (dynamic pricing).
PRICE_UPDATED_AT = (
    "(SELECT p.updated_at FROM model_prices p WHERE p.kind = 'gpu' AND p.model_key = g.model_key)"
)
_LOCK_GPU = Query(
    f"""
    SELECT g.miner_id, g.effective_price_units, g.delisted_at, g.model_key,
           g.interruptible, g.min_bid_units, m.last_heartbeat, m.reported_status,
           {PRICE_UPDATED_AT} AS price_updated_at
    FROM gpus g JOIN miners m ON m.id = g.miner_id WHERE g.id = $1 FOR UPDATE OF g
    """
)
# The first open booking overlapping the window ($2 its end, $3 its start), one this booking
# cannot displace before any it can (an interruptible one bidding at most $5), and of those
# it can, one of a gang first (a gang falls as a whole: bookings.preemption), so that its
# gang_id says whether any belongs to one; and whether one has run out ($4 now) and waits
# to be settled: one statement, at most three rows. Under the GPU's lock the open bookings
# of the GPU can only end, never begin.
_CHECK_WINDOW = Query(
    """
    SELECT * FROM (SELECT CASE WHEN rental_type = 'interruptible' AND price_units <= $5
                          THEN 'outbid' ELSE 'overlap' END AS found,
                          start_time, end_time, created_at, rental_type, price_units, gang_id
                   FROM bookings
                   WHERE gpu_id = $1 AND status = 'open' AND start_time < $2 AND end_time > $3
                   ORDER BY rental_type = 'interruptible' AND price_units <= $5,
                            gang_id IS NULL, start_time
                   LIMIT 1) overlapping
    UNION ALL
    SELECT * FROM (SELECT 'due' AS found, start_time, end_time, created_at, rental_type,
                          price_units, gang_id FROM bookings
                   WHERE gpu_id = $1 AND status = 'open' AND end_time <= $4 LIMIT 1) run_out
    UNION ALL
    SELECT * FROM (SELECT 'let_go' AS found, start_time, ended_at, created_at, rental_type,
                          price_units, gang_id FROM bookings
                   WHERE gpu_id = $1
                     AND status IN ('released', 'interrupted', 'completed', 'preempted')
                     AND end_time > $3 AND ended_at > $3
                   ORDER BY ended_at DESC LIMIT 1) let_go
    """
)
# Without the lock (bookings.busy): an open booking covering the start ($2) that this
# booking cannot displace (see _CHECK_WINDOW, $4), found only when the GPU could otherwise
# be booked (listed, its miner online since $3), so that a refusal from here is the one the
# locked checks would give.
_COVERING_START = Query(
    f"""
    SELECT b.start_time, b.end_time, b.created_at, b.rental_type, b.price_units
    FROM gpus g JOIN miners m ON m.id = g.miner_id
    JOIN bookings b ON b.gpu_id = g.id AND b.status = 'open'
         AND b.start_time <= $2 AND b.end_time > $2
         AND NOT (b.rental_type = 'interruptible' AND b.price_units <= $4)
    WHERE g.id = $1 AND g.delisted_at IS NULL AND NOT {rule.offline_sql("$3")}
    LIMIT 1
    """
)
_HAS_DUE = Query(
    "SELECT 1 FROM bookings WHERE gpu_id = $1 AND status = 'open' AND end_time <= $2 LIMIT 1"
)
_QUOTE = Query("SELECT gpu_id, client_id, price_units, expires_at FROM quotes WHERE id = $1")
_SPEND_QUOTE = Query("UPDATE quotes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
_INSERT_BOOKING = Query(
    "INSERT INTO bookings (id, gpu_id, client_id, miner_id, job_id, status, start_time, "
    "end_time, booked_seconds, price_units, total_units, charged_units, refunded_units, "
    "created_at, rental_type, gang_id) "
    "VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9, $10, 0, 0, $11, $12, $13)"
)
_INSERT_ORDER = Query(
    "INSERT INTO orders (id, booking_id, client_id, miner_id, gpu_id, job_id, status, "
    "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
_INSERT_EVENT = Query("INSERT INTO order_events (order_id, status, at) VALUES ($1, $2, $3)")
_COUNT_BOOKING = Query("UPDATE gpus SET total_bookings = total_bookings + 1 WHERE id = $1")


async def lock_gpu(conn: Conn, gpu_id: str, *, now: datetime, heartbeat_timeout: int) -> GpuLock:
    """Lock the GPU's row and check it can be booked."""
    row = await conn.fetchrow(_LOCK_GPU, gpu_id)
    if row is None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")
    if row["delisted_at"] is not None:
        raise Conflict("This GPU has been delisted.", code="gpu_delisted")
    heartbeat = as_time(row["last_heartbeat"])
    if rule.is_offline(heartbeat, row["reported_status"], rule.cutoff(now, heartbeat_timeout)):
        raise Conflict("This GPU's miner is offline.", code="gpu_offline")
    return gpu_lock_of(row)


def gpu_lock_of(row: Row) -> GpuLock:
    """The GPU as a row read with its lock has it, found listed and online: ``g``'s
    miner_id, effective_price_units, model_key, interruptible and min_bid_units, its
    miner's last_heartbeat, and ``PRICE_UPDATED_AT`` as price_updated_at (booking by
    criteria reads them with the lock it takes)."""
    return GpuLock(
        heartbeat=as_time(row["last_heartbeat"]),
        miner_id=row["miner_id"],
        price_units=row["effective_price_units"],
        model_key=row["model_key"],
        price_updated_at=maybe_time(row["price_updated_at"]),
        interruptible=bool(row["interruptible"]),
        min_bid_units=row["min_bid_units"],
    )


def check_start(start: datetime | None, now: datetime) -> datetime:
    """When a booking asked to start at ``start`` (None: now) begins, or 422."""
    start = now if start is None else start
    if start < now - START_TOLERANCE:
        raise Invalid("The start time is in the past.", code="start_in_past")
    if start > now + MAX_RESERVATION_AHEAD:
        raise Invalid("The start time is more than 90 days ahead.", code="start_too_far")
    return max(start, now).astimezone(UTC)


def _window(request: BookingRequest, now: datetime) -> tuple[datetime, datetime]:
    start = check_start(request.start, now)
    return start, start + timedelta(seconds=request.seconds)


@dataclass(slots=True)
class _Window:
    start: datetime
    end: datetime
    due: bool = False  # an open booking of the GPU has run out and waits to be settled
    displaced: list[Displaced] = field(default_factory=list)


async def _claim_window(
    conn: Conn, request: BookingRequest, claim: Claim, window: _Window, now: datetime,
    settings: Settings,
) -> _Window:  # fmt: skip
    """Refuse a window that overlaps an open booking this one cannot displace; displace the
    interruptible bookings it outbids (bookings.preemption). A window that would begin
    before the GPU's last holder let go of it (one displaced now and given its notice, or a
    release that committed while this booking waited for the GPU's lock, with its clock read
    before) begins then instead: a booking never starts before it holds the GPU."""
    while True:
        rows = await conn.fetch(
            _CHECK_WINDOW, request.gpu_id, window.end, window.start, now, claim.outbids
        )
        found = {row["found"]: row for row in rows}
        other = found.get("overlap")
        if other is not None:
            raise _overlap(other, now, claim)
        window.due = window.due or "due" in found
        if "outbid" in found:
            gangs = found["outbid"]["gang_id"] is not None  # one of a gang sorts first
            displaced = await preemption.displace(
                conn, gpu_id=request.gpu_id, start=window.start, end=window.end, claim=claim,
                now=now, notice_seconds=settings.preempt_notice_seconds,
                fee_bps=settings.platform_fee_bps, policy=settings.outage_policy, gangs=gangs,
            )  # fmt: skip
            window.displaced += displaced
            here = [d.gpu_free_at for d in displaced if d.booking.gpu_id == request.gpu_id]
            free = max(here, default=window.start)
            if free > window.start:  # it begins when the notice ends
                shift = free - window.start
                window.start, window.end = window.start + shift, window.end + shift
            continue
        let_go = found.get("let_go")
        if let_go is None:
            return window
        shift = as_time(let_go["end_time"]) - window.start  # the column holds its ended_at
        window.start, window.end = window.start + shift, window.end + shift


def _overlap(other: Row, now: datetime, claim: Claim | None = None) -> Conflict:
    """The refusal for an open booking that overlaps the window: booked, when it runs now, or
    an overlap with a reservation, or (for a bid) a higher bid. A booking made after this
    request read its clock (one that won a race for the GPU) counts as running from when it
    was made."""
    other_start, other_end = as_time(other["start_time"]), as_time(other["end_time"])
    if claim is not None and other["rental_type"] == INTERRUPTIBLE:
        held = other["price_units"]
        return Conflict(
            f"This GPU is held from {iso(other_start)} to {iso(other_end)} by an "
            f"interruptible booking bidding {units_text(held)} per hour; a bid of at least "
            f"{units_text(winning_bid(held))} (or an on-demand booking) displaces it.",
            code="bid_too_low",
        )
    if other_start <= max(now, as_time(other["created_at"])) and now < other_end:
        return Conflict(f"This GPU is booked until {iso(other_end)}.", code="gpu_booked")
    return Conflict(
        f"The window overlaps a reservation from {iso(other_start)} to {iso(other_end)}.",
        code="booking_overlap",
    )


async def _refuse_if_covered(
    conn: Conn, request: BookingRequest, start: datetime, now: datetime, heartbeat_timeout: int
) -> None:
    """The lock-free look of a booking of a busy GPU (bookings.busy)."""
    cutoff = rule.cutoff(now, heartbeat_timeout)
    other = await conn.fetchrow(_COVERING_START, request.gpu_id, start, cutoff, request.outbids)
    if other is not None:
        raise _overlap(other, now, Claim(request.rental_type, request.bid_units or 0))


async def _quoted_price(conn: Conn, request: BookingRequest, now: datetime) -> int:
    """The quoted price per hour, once; the quote is spent by the booking that uses it."""
    quote = await conn.fetchrow(_QUOTE, request.quote_id)
    if quote is None or quote["client_id"] != request.client_id:
        raise NotFound(f"No quote {request.quote_id!r}.", code="quote_not_found")
    if quote["gpu_id"] != request.gpu_id:
        raise Invalid("This quote is for another GPU.", code="quote_mismatch")
    if now >= as_time(quote["expires_at"]):
        raise Conflict("This quote has expired; ask for a new one.", code="quote_expired")
    if await conn.execute(_SPEND_QUOTE, request.quote_id, now) != 1:
        raise Conflict("This quote has already been used.", code="quote_used")
    price: int = quote["price_units"]
    return price


async def book(
    conn: Conn,
    request: BookingRequest,
    *,
    now: datetime,
    settings: Settings,
    busy: BusyGpus | None = None,
    locked: GpuLock | None = None,
) -> Booked:
    """Book the GPU for the request's window; the cost moves from the client's balance into
    escrow. ``busy``: this process's hint of booked GPUs, kept up to date here; ``locked``:
    the GPU as the caller read it with its row lock (a gang locks all its GPUs first). A
    booking of the GPU whose time ran out is settled, and a stale model price recomputed,
    once this commits (bookings.follow_up)."""
    heartbeat_timeout = settings.heartbeat_timeout_seconds
    start, end = _window(request, now)
    job_id = request.job_id
    if job_id is not None and await riders.client_of(conn, job_id) != request.client_id:
        # Another client's job is one this client cannot see.
        raise NotFound(f"No job {job_id!r}.", code="job_not_found")
    if busy is not None and request.gpu_id in busy and locked is None:
        await _refuse_if_covered(conn, request, start, now, heartbeat_timeout)
    gpu = locked or await lock_gpu(
        conn, request.gpu_id, now=now, heartbeat_timeout=heartbeat_timeout
    )
    claim = _claim(request, gpu, settings)
    seconds = request.seconds
    if request.max_cost_units is not None and claim.price_units > 0:
        seconds = min(seconds, request.max_cost_units * 3600 // claim.price_units)
        if seconds < 1:
            raise Conflict(
                f"At {units_text(claim.price_units)} per hour, "
                f"{units_text(request.max_cost_units)} buys less than a second.",
                code="price_above_limit",
            )
        end = start + timedelta(seconds=seconds)
    emitted = len(conn.outbox or ())  # the displaced bookings' events follow
    try:
        window = await _claim_window(conn, request, claim, _Window(start, end), now, settings)
    except Conflict:
        if busy is not None:
            busy.add(request.gpu_id)
        raise
    start, end = window.start, window.end
    price = claim.price_units
    if request.quote_id is not None:
        price = await _quoted_price(conn, request, now)
    if request.max_price_units is not None and price > request.max_price_units:
        raise Conflict(
            f"The price is {units_text(price)} per hour, above your limit of "
            f"{units_text(request.max_price_units)}.",
            code="price_above_limit",
        )
    total = cost_units(price, seconds)
    booking = BookingRecord(
        id=new_id("bkg"),
        gpu_id=request.gpu_id,
        client_id=request.client_id,
        miner_id=gpu.miner_id,
        job_id=request.job_id,
        status="open",
        start_time=start,
        end_time=end,
        booked_seconds=seconds,
        price_units=price,
        total_units=total,
        charged_units=0,
        refunded_units=0,
        outage_seconds=0,
        outage_refund_units=0,
        created_at=now,
        ended_at=None,
        order_id=new_id("ord"),
        order_status="pending" if start > now else "active",
        miner_heartbeat=gpu.heartbeat,
        miner_status="online",  # lock_gpu refused it otherwise
        rental_type=claim.rental_type,
        gang_id=request.gang_id,
    )
    # A booking that begins at once is created active: booking.started is for reservations.
    created = announce.created(booking, now=now, policy=settings.outage_policy)
    await _write(conn, booking, now, created, window.displaced, emitted)
    if busy is not None:
        busy.add(request.gpu_id)
    if window.due:
        follow_up.settle_due(
            conn,
            gpu_id=request.gpu_id,
            now=now,
            fee_bps=settings.platform_fee_bps,
            policy=settings.outage_policy,
        )
    if is_stale(gpu.price_updated_at, now=now, settings=settings):
        follow_up.reprice(conn, model_key=gpu.model_key, now=now, settings=settings)
    return Booked(booking, gpu, created.data, tuple(window.displaced))


def _claim(request: BookingRequest, gpu: GpuLock, settings: Settings) -> Claim:
    """What the booking pays per hour, and so what it may displace: the GPU's price on
    demand, or the request's bid, which the GPU must allow and take."""
    if request.rental_type == ON_DEMAND:
        return Claim(ON_DEMAND, gpu.price_units)
    bid = request.bid_units
    assert bid is not None, "an interruptible request carries its bid (the router checks)"
    if not gpu.interruptible:
        raise Conflict(
            "This GPU's provider does not rent it interruptibly; book it on demand.",
            code="interruptible_not_allowed",
        )
    least = least_bid(gpu.price_units, gpu.min_bid_units, settings.min_bid_share)
    if bid < least:
        raise Conflict(
            f"The bid is below this GPU's minimum of {units_text(least)} per hour.",
            code="bid_below_minimum",
        )
    if bid >= gpu.price_units:
        raise Conflict(
            f"A bid of {units_text(bid)} is not below the on-demand price of "
            f"{units_text(gpu.price_units)} per hour; book it on demand instead.",
            code="bid_not_below_on_demand",
        )
    return Claim(INTERRUPTIBLE, bid)


class OutOfFunds(Exception):
    """The client cannot pay; trying other GPUs is pointless."""


async def try_book(
    conn: Conn, request: BookingRequest, *, now: datetime, settings: Settings
) -> Booked | None:
    """``book`` on behalf of a bid or a job, in a savepoint: a refusal (the GPU just taken,
    the window overlaps) rolls back only its own writes and yields None; a refusal for lack
    of funds raises ``OutOfFunds``."""
    try:
        return await conn.attempt(lambda: book(conn, request, now=now, settings=settings))
    except PaymentRequired as exc:
        raise OutOfFunds(exc.detail) from exc
    except AppError:
        return None


Fits = Callable[[Conn, list[str]], Awaitable[list[str]]]


async def book_first(
    conn: Conn,
    constraints: Constraints,
    wanted: BookingRequest,
    *,
    now: datetime,
    settings: Settings,
    tried: set[str],
    fits: Fits | None = None,
) -> Booked | None:
    """Book for ``wanted`` the first GPU, in ``gpus.matching``'s order, that meets the
    constraints (and ``fits``, which keeps those of a list it accepts) and that ``try_book``
    takes. Every GPU looked at goes into ``tried`` and is not looked at again; lack of funds
    raises ``OutOfFunds``."""
    while found := await candidates(
        conn,
        constraints=constraints,
        now=now,
        heartbeat_timeout=settings.heartbeat_timeout_seconds,
        min_bid_share=settings.min_bid_share,
        exclude=tried,
    ):
        if fits is not None:
            kept = await fits(conn, found)
            tried.update(found)
            found = kept
        for gpu_id in found:
            tried.add(gpu_id)
            booked = await try_book(
                conn, replace(wanted, gpu_id=gpu_id), now=now, settings=settings
            )
            if booked is not None:
                return booked
    return None


async def _write(
    conn: Conn,
    b: BookingRecord,
    now: datetime,
    created: Outgoing,
    displaced: list[Displaced],
    emitted: int,
) -> None:
    """The booking, its order and its first event, the GPU's count, and the escrow posting,
    which refuses a booking the client's balance does not cover (the caller's transaction
    rolls back); the settlements of the bookings it displaced are posted with its escrow,
    all accounts locked at once. On PostgreSQL all of it is one statement, with the events
    emitted since the outbox held ``emitted`` (the displaced bookings')."""
    booking = (
        b.id, b.gpu_id, b.client_id, b.miner_id, b.job_id, b.start_time, b.end_time,
        b.booked_seconds, b.price_units, b.total_units, b.created_at, b.rental_type, b.gang_id,
    )  # fmt: skip
    order = (b.order_id, b.order_status, min(b.start_time, now))
    escrow = [Leg(b.client_id, MAIN, -b.total_units), Leg(b.client_id, ESCROW, b.total_units)]
    postings = [Posting("booking_escrow", escrow, b.id), *(d.posting for d in displaced)]
    if conn.dialect == "postgresql":  # the rows, the events and the postings: one statement
        ctes = _PLACE_ALONG
        args: tuple[object, ...] = (*booking, *order)
        if displaced:
            ctes, args = f"{ctes},{_NOTED_ALONG}", (*args, preemption.displacing_note(displaced))
        pending = [*outbox.taken_since(conn, emitted), created]
        events, columns = outbox.along(conn, pending, first=len(args) + 1)
        await post_many(conn, postings, now=now, along=Along(f"{ctes},{events}", (*args, *columns)))
        return
    await _write_rows(conn, b, now, booking, order, created)
    if displaced:
        note = preemption.displacing_note(displaced)
        await conn.execute(preemption.NOTED_EVENT, b.order_id, "preempting", now, note)
    await post_many(conn, postings, now=now)


async def _write_rows(
    conn: Conn,
    b: BookingRecord,
    now: datetime,
    booking: tuple[object, ...],
    order: tuple[object, ...],
    created: Outgoing,
) -> None:
    await conn.execute(_INSERT_BOOKING, *booking)
    await conn.execute(
        _INSERT_ORDER,
        b.order_id, b.id, b.client_id, b.miner_id, b.gpu_id, b.job_id, b.order_status, now,
    )  # fmt: skip
    await conn.execute(_INSERT_EVENT, *order)
    await conn.execute(_COUNT_BOOKING, b.gpu_id)
    conn.emit(created)


# The rows of ``_write`` written along with the escrow posting, in its statement.
_PLACE_ALONG = """
    booking AS (
        INSERT INTO bookings (id, gpu_id, client_id, miner_id, job_id, status, start_time,
            end_time, booked_seconds, price_units, total_units, charged_units, refunded_units,
            created_at, rental_type, gang_id)
        VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9, $10, 0, 0, $11, $12, $13)
        RETURNING id),
    placed AS (
        INSERT INTO orders (id, booking_id, client_id, miner_id, gpu_id, job_id, status,
            created_at)
        SELECT $14, id, $3, $4, $2, $5, $15, $11 FROM booking RETURNING id),
    event AS (
        INSERT INTO order_events (order_id, status, at) SELECT id, $15, $16 FROM placed
        RETURNING order_id),
    counted AS (UPDATE gpus SET total_bookings = total_bookings + 1 WHERE id = $2)"""


# The order history's note of a booking that displaced others ($17), after its first event
# (read from it, so numbered after it), for the same statement (PostgreSQL).
_NOTED_ALONG = """
    noted AS (INSERT INTO order_events (order_id, status, at, note)
              SELECT order_id, 'preempting', $11, $17 FROM event)"""


# -- release and extend ------------------------------------------------------------------

_LOCK_GPU_ROW = Query("SELECT id FROM gpus WHERE id = $1 FOR UPDATE")
_OPEN_ON_GPU = Query(
    f"SELECT {COLUMNS} FROM {FROM} "
    "WHERE b.gpu_id = $1 AND b.status = 'open' AND b.end_time > $2 "
    "ORDER BY b.start_time FOR UPDATE OF b"
)
_BOOKING_GPU = Query("SELECT gpu_id FROM bookings WHERE id = $1")
_BOOKING_PLACE = Query("SELECT gpu_id, gang_id FROM bookings WHERE id = $1")
_BOOKING = Query(f"SELECT {COLUMNS} FROM {FROM} WHERE b.id = $1")
_BOOKING_LOCKED = Query(f"SELECT {COLUMNS} FROM {FROM} WHERE b.id = $1 FOR UPDATE OF b")
_EXTEND = Query(
    "UPDATE bookings SET end_time = $2, booked_seconds = $3, total_units = $4 "
    "WHERE id = $1 AND status = 'open'"
)
_OVERLAP_OTHERS = Query(
    "SELECT start_time FROM bookings WHERE gpu_id = $1 AND status = 'open' AND id <> $4 "
    "AND start_time < $2 AND end_time > $3 ORDER BY start_time LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class ReleaseTerms:
    """What a release now hands settlement: ``full_refund`` when the booking's job had not
    been taken by its miner (nothing ran: as when the job is cancelled), and the miner's
    current ``silence`` (the booking's clock stands at its last heartbeat)."""

    full_refund: bool
    silence: lifecycle.Outage | None


def release_terms(
    booking: BookingRecord, job: riders.Held | None, *, now: datetime, policy: Policy
) -> ReleaseTerms:
    silence = lifecycle.current(booking, heartbeat=booking.miner_heartbeat, now=now, policy=policy)
    return ReleaseTerms(full_refund=job is not None and job.waiting, silence=silence)


@dataclass(frozen=True, slots=True)
class Released:
    booking: BookingRecord
    used_seconds: int


async def lock_gpu_row(conn: Conn, gpu_id: str) -> None:
    if await conn.fetchrow(_LOCK_GPU_ROW, gpu_id) is None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")


async def release_locked(
    conn: Conn, booking: BookingRecord, *, now: datetime, fee_bps: int, policy: Policy
) -> Released:
    # A job's booking ends with its job (the jobs domain's rule, through riders).
    job = await riders.hold(conn, booking)
    if job is not None and not job.locked:
        raise Conflict(
            "This booking's job is being handed to its miner or reported on; try again.",
            code="conflict",
        )
    terms = release_terms(booking, job, now=now, policy=policy)
    closed = await settlement.close(
        conn,
        booking,
        at=now,
        now=now,
        fee_bps=fee_bps,
        full_refund=terms.full_refund,
        silence=terms.silence,
    )
    if closed is None:
        raise Conflict("This booking has already ended.", code="nothing_to_release")
    await riders.released(conn, job, booking, now=now)
    if await conn.fetchrow(_HAS_DUE, booking.gpu_id, now) is not None:
        follow_up.settle_due(conn, gpu_id=booking.gpu_id, now=now, fee_bps=fee_bps, policy=policy)
    clock = now if terms.silence is None else min(now, terms.silence.stop)
    return Released(closed, 0 if terms.full_refund else lifecycle.served_seconds(booking, clock))


async def release_gpu(
    conn: Conn,
    *,
    gpu_id: str,
    principal: Principal,
    now: datetime,
    fee_bps: int,
    policy: Policy,
) -> Released:
    """End the caller's running booking on the GPU, or else cancel their earliest
    reservation (an admin: the earliest of anyone's)."""
    await lock_gpu_row(conn, gpu_id)
    open_bookings = [BookingRecord.from_row(r) for r in await conn.fetch(_OPEN_ON_GPU, gpu_id, now)]
    if not open_bookings:
        raise Conflict("This GPU has no booking to release.", code="nothing_to_release")
    if principal.role != "admin":
        open_bookings = [b for b in open_bookings if b.client_id == principal.owner_id]
        if not open_bookings:  # another client's booking is not the caller's to see
            raise Conflict("You have no booking on this GPU to release.", code="nothing_to_release")
    first = open_bookings[0]
    if first.gang_id is not None:
        raise gang_member(first)
    return await release_locked(conn, first, now=now, fee_bps=fee_bps, policy=policy)


def gang_member(booking: BookingRecord) -> Conflict:
    """The refusal to end or change one booking of a gang on its own."""
    return Conflict(
        f"This booking is one of gang {booking.gang_id}'s, which is released, extended and "
        f"preempted as a whole: release it by the booking (POST /v1/bookings/{booking.id}"
        f"/release) or the gang (POST /v1/gangs/{booking.gang_id}/release).",
        code="gang_member",
    )


@dataclass(frozen=True, slots=True)
class Place:
    """Where a booking is: its GPU and its gang (read without locks: neither changes)."""

    gpu_id: str
    gang_id: str | None


async def place_of(conn: Conn, booking_id: str) -> Place:
    row = await conn.fetchrow(_BOOKING_PLACE, booking_id)
    if row is None:
        raise NotFound(f"No booking {booking_id!r}.", code="booking_not_found")
    return Place(row["gpu_id"], row["gang_id"])


async def _owned_booking_locked(
    conn: Conn, booking_id: str, principal: Principal, place: Place | None = None
) -> BookingRecord:
    """The booking with its GPU's lock and its own, in that order (the project's lock
    order); ``place``: where it is, if the caller has read it."""
    place = place or await place_of(conn, booking_id)
    await lock_gpu_row(conn, place.gpu_id)
    row = await conn.fetchrow(_BOOKING_LOCKED, booking_id)
    assert row is not None
    booking = BookingRecord.from_row(row)
    if principal.role != "admin" and booking.client_id != principal.owner_id:
        # What the caller may not see does not exist for them: the same 404 as `show`.
        raise NotFound(f"No booking {booking_id!r}.", code="booking_not_found")
    return booking


async def release_booking(
    conn: Conn,
    *,
    booking_id: str,
    principal: Principal,
    now: datetime,
    fee_bps: int,
    policy: Policy,
    place: Place | None = None,
) -> Released:
    booking = await _owned_booking_locked(conn, booking_id, principal, place)
    if not lifecycle.live(booking, now):
        raise Conflict("This booking has already ended.", code="nothing_to_release")
    return await release_locked(conn, booking, now=now, fee_bps=fee_bps, policy=policy)


async def end_booking(
    conn: Conn,
    *,
    booking_id: str,
    now: datetime,
    fee_bps: int,
    policy: Policy,
    full_refund: bool = False,
    refund_after_end: bool = False,
) -> BookingRecord | None:
    """End a job's booking now (its result, failure, cancellation or expiry), under its GPU's
    lock; None when it has ended already. A booking that ran out was served: it is charged
    in full, unless ``refund_after_end`` (the job never started)."""
    gpu_id = await conn.fetchval(_BOOKING_GPU, booking_id)
    if gpu_id is None:
        return None
    await lock_gpu_row(conn, gpu_id)
    row = await conn.fetchrow(_BOOKING_LOCKED, booking_id)
    assert row is not None
    booking = BookingRecord.from_row(row)
    if booking.status != "open":
        return None
    ran_out = now >= booking.end_time
    refund = full_refund and (refund_after_end or not ran_out)
    at = booking.end_time if ran_out and not refund else now
    silence = lifecycle.current(booking, heartbeat=booking.miner_heartbeat, now=now, policy=policy)
    return await settlement.close(
        conn, booking, at=at, now=now, fee_bps=fee_bps, full_refund=refund, silence=silence
    )


async def _into_escrow(
    conn: Conn, booking: BookingRecord, units: int, *, kind: str, now: datetime
) -> None:
    """More of the booking's cost from its client's balance into escrow (refused, and the
    transaction rolled back, when the balance does not cover it)."""
    legs = [Leg(booking.client_id, MAIN, -units), Leg(booking.client_id, ESCROW, units)]
    await post(conn, kind=kind, legs=legs, now=now, booking_id=booking.id)


async def extend(
    conn: Conn,
    *,
    booking_id: str,
    seconds: int,
    max_seconds: int,
    principal: Principal,
    now: datetime,
    fee_bps: int,
    policy: Policy,
    place: Place | None = None,
) -> BookingRecord:
    """Add ``seconds`` to a booking that has not ended (a due booking on the GPU is settled
    once this commits)."""
    booking = await _owned_booking_locked(conn, booking_id, principal, place)
    return await extend_locked(
        conn, booking, seconds=seconds, max_seconds=max_seconds, now=now, fee_bps=fee_bps,
        policy=policy,
    )  # fmt: skip


async def extend_locked(
    conn: Conn,
    booking: BookingRecord,
    *,
    seconds: int,
    max_seconds: int,
    now: datetime,
    fee_bps: int,
    policy: Policy,
) -> BookingRecord:
    """``extend`` for a booking whose GPU and row the caller has locked."""
    if not lifecycle.live(booking, now):
        raise Conflict("Only a booking that has not ended can be extended.", code="booking_ended")
    silent = lifecycle.current(booking, heartbeat=booking.miner_heartbeat, now=now, policy=policy)
    if silent is not None or booking.miner_status == "offline":
        raise Conflict("This GPU's miner is offline.", code="gpu_offline")
    if booking.booked_seconds + seconds > max_seconds:
        raise Invalid(
            f"A booking lasts at most {Decimal(max_seconds) / 3600} hours.",
            code="duration_too_long",
        )
    new_end = booking.end_time + timedelta(seconds=seconds)
    other = await conn.fetchrow(
        _OVERLAP_OTHERS, booking.gpu_id, new_end, booking.end_time, booking.id
    )
    if other is not None:
        raise Conflict(
            f"Extending would overlap the reservation from {iso(other['start_time'])}.",
            code="booking_overlap",
        )
    extra = cost_units(booking.price_units, seconds)
    await _into_escrow(conn, booking, extra, kind="booking_extension", now=now)
    booking.end_time = new_end
    booking.booked_seconds += seconds
    booking.total_units += extra
    await conn.execute(
        _EXTEND, booking.id, booking.end_time, booking.booked_seconds, booking.total_units
    )
    announce.booking(conn, booking, "extended", now=now, policy=policy)
    if await conn.fetchrow(_HAS_DUE, booking.gpu_id, now) is not None:
        follow_up.settle_due(conn, gpu_id=booking.gpu_id, now=now, fee_bps=fee_bps, policy=policy)
    return booking


_GPU_PRICE = Query("SELECT effective_price_units FROM gpus WHERE id = $1")
_REBID = Query(
    "UPDATE bookings SET price_units = $2, total_units = $3, fixed_seconds = $4, "
    "fixed_units = $5 WHERE id = $1 AND status = 'open'"
)


async def change_bid(
    conn: Conn,
    *,
    booking_id: str,
    bid_units: int,
    principal: Principal,
    now: datetime,
    policy: Policy,
) -> BookingRecord:
    """Raise an interruptible booking's bid: the seconds served so far keep their price,
    the rest is paid at the new bid (the difference moves into escrow)."""
    booking = await _owned_booking_locked(conn, booking_id, principal)
    if booking.gang_id is not None:
        raise Conflict(
            f"This booking is one of gang {booking.gang_id}'s, whose bid is the same on every "
            "GPU and stays as it was booked.",
            code="gang_member",
        )
    if booking.rental_type != INTERRUPTIBLE:
        raise Conflict("Only an interruptible booking has a bid.", code="not_interruptible")
    if not lifecycle.live(booking, now):
        raise Conflict("This booking has ended.", code="booking_ended")
    silent = lifecycle.current(booking, heartbeat=booking.miner_heartbeat, now=now, policy=policy)
    if silent is not None or booking.miner_status == "offline":
        raise Conflict("This GPU's miner is offline.", code="gpu_offline")
    if bid_units <= booking.price_units:
        raise Conflict(
            f"A bid can only be raised: this one is {units_text(booking.price_units)}.",
            code="bid_not_higher",
        )
    on_demand = await conn.fetchval(_GPU_PRICE, booking.gpu_id)
    if bid_units >= on_demand:
        raise Conflict(
            f"A bid of {units_text(bid_units)} is not below the on-demand price of "
            f"{units_text(on_demand)} per hour.",
            code="bid_not_below_on_demand",
        )
    # The seconds served at the old bid are those up to the miner's last heartbeat: the
    # ones since are served only if it is heard again (bookings.outages), at the new bid.
    heard = min(now, max(booking.start_time, booking.miner_heartbeat))
    served = lifecycle.served_seconds(booking, heard)
    fixed_units = lifecycle.split(booking, heard, 0).charged
    total = fixed_units + cost_units(bid_units, booking.booked_seconds - served)
    await _into_escrow(
        conn, booking, total - booking.total_units, kind="booking_bid_raised", now=now
    )
    note = f"Bid raised from {units_text(booking.price_units)} to {units_text(bid_units)}."
    await conn.execute(_REBID, booking.id, bid_units, total, served, fixed_units)
    await conn.execute(preemption.NOTED_EVENT, booking.order_id, "bid_raised", now, note)
    booking.price_units, booking.total_units = bid_units, total
    booking.fixed_seconds, booking.fixed_units = served, fixed_units
    announce.booking(conn, booking, "bid_raised", now=now, policy=policy)
    return booking


# -- reads -------------------------------------------------------------------------------


_LIST_FOR = {
    "client": "WHERE b.client_id = $1",
    "miner": "WHERE b.miner_id = $1",
    "admin": "WHERE $1 = $1",
}
_LISTS = {
    role: Query(
        f"SELECT {COLUMNS} FROM {FROM} {where} "
        "ORDER BY b.created_at DESC, b.id DESC LIMIT $2 OFFSET $3"
    )
    for role, where in _LIST_FOR.items()
}


async def get_booking(
    conn: Conn, *, booking_id: str, principal: Principal, now: datetime, policy: Policy
) -> BookingRecord:
    """The booking, as shown (marked when its job still waits for its miner)."""
    row = await conn.fetchrow(_BOOKING, booking_id)
    booking = None if row is None else BookingRecord.from_row(row)
    visible = booking is not None and (
        principal.role == "admin" or principal.owner_id in (booking.client_id, booking.miner_id)
    )
    if booking is None or not visible:
        raise NotFound(f"No booking {booking_id!r}.", code="booking_not_found")
    await riders.mark_waiting(conn, [booking], now=now, policy=policy)
    return booking


async def list_bookings(
    conn: Conn, *, principal: Principal, limit: int, offset: int, now: datetime, policy: Policy
) -> list[BookingRecord]:
    """The bookings the principal may see, as shown (see get_booking)."""
    rows = await conn.fetch(_LISTS[principal.role], principal.owner_id, limit, offset)
    found = [BookingRecord.from_row(row) for row in rows]
    await riders.mark_waiting(conn, found, now=now, policy=policy)
    return found
