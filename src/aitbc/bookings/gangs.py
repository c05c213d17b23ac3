"""Gangs: several GPUs booked together, all or nothing, for one window and one rental type
(training across GPUs needs them all at once).

A gang is booked by criteria (bookings.best) with ``count`` and a placement: every GPU on
one miner (``same_miner``), in one region (``same_region``) or anywhere (``any``). Of the
GPUs that meet every criterion, each miner's or region's best ``count`` form a group; the
cheapest group is booked (on demand: the least total price; interruptible: the least
total of the bids that win them), the next when one of its GPUs was taken meanwhile. The
gang locks its GPUs' rows in id order, then books each through ``service.book`` in one
savepoint: a refusal of any undoes them all. When a GPU is free only once a preemption's
notice ends, every booking of the gang begins then (the gang is booked again from that
moment), so the bookings of a gang always share their window.

The gang is the order; its bookings (each with its own order, escrow and history) are its
lines. Releasing or extending one booking of a gang releases or extends them all, in one
transaction that locks every GPU of the gang (in id order), then every booking (in id
order); a preemption ends the whole gang (bookings.preemption). A miner's outage affects
only the bookings on that miner's GPUs, as it would any booking: the others go on until
their client releases the gang."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aitbc.auth.principal import Principal
from aitbc.bookings import best, lifecycle, records, service
from aitbc.bookings.records import COLUMNS, FROM, BookingRecord
from aitbc.config import Policy, Settings
from aitbc.errors import AppError, Conflict, NotFound, PaymentRequired
from aitbc.kit.ids import new_id
from aitbc.kit.money import units_text
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Query
from aitbc.store.values import as_time, iso

SCANNED = 2000  # GPUs read, best first, to form the groups
PLACED = {
    "same_miner": "on one miner",
    "same_region": "in one region",
    "any": "anywhere",
}

_INSERT = Query(
    "INSERT INTO gangs (id, client_id, placement, size, created_at) VALUES ($1, $2, $3, $4, $5)"
)
_GANG = Query("SELECT id, client_id, placement, size, created_at FROM gangs WHERE id = $1")
_LINES = Query(f"SELECT {COLUMNS} FROM {FROM} WHERE b.gang_id = $1 ORDER BY b.gpu_id")
_LINE_LOCKED = Query(f"SELECT {COLUMNS} FROM {FROM} WHERE b.id = $1 FOR UPDATE OF b")


@dataclass(frozen=True, slots=True)
class Gang:
    id: str
    client_id: str
    placement: str
    size: int
    created_at: datetime
    lines: list[BookingRecord]  # one booking per GPU, by GPU id


@dataclass(frozen=True, slots=True)
class BookedGang:
    gang: Gang
    displaced: int  # interruptible bookings its lines preempted


class _Later(Exception):
    """Some GPU of the group is free only from ``start``: book them all from then."""

    def __init__(self, start: datetime) -> None:
        self.start = start


async def book_gang(
    conn: Conn,
    c: best.Criteria,
    *,
    count: int,
    placement: str,
    client_id: str,
    now: datetime,
    settings: Settings,
) -> BookedGang:
    """Book ``count`` GPUs that meet every criterion, placed as asked, all or nothing."""
    keys = await best.model_keys_of(conn, c)
    found = await best.read(
        conn, c, now=now, settings=settings, every=False, limit=SCANNED, model_keys=keys,
        lock=False,
    )  # fmt: skip
    choices = best.groups(found.rows, count=count, placement=placement, rental_type=c.rental_type)
    if not choices:
        if not found.rows:
            everything = await best.read(
                conn, c, now=now, settings=settings, every=True, limit=best.SCANNED,
                model_keys=keys,
            )  # fmt: skip
            raise best.refusal(everything)
        raise Conflict(
            f"{len(found.rows)} GPU(s) meet every criterion, but no {count} of them "
            f"{PLACED[placement]} ({placement}).",
            code="no_gang_matches",
        )
    for group in choices[: best.TRIES]:

        async def attempt(group: list[Row] = group) -> BookedGang:
            return await _book_group(
                conn, c, group, placement=placement, client_id=client_id, now=now,
                settings=settings,
            )  # fmt: skip

        try:
            return await conn.attempt(attempt)
        except PaymentRequired:
            raise
        except AppError:
            continue  # one of its GPUs was taken meanwhile: the next group
    raise Conflict(
        f"Each of the {min(len(choices), best.TRIES)} groups of {count} GPUs that met every "
        "criterion had a GPU taken meanwhile, or its price moved above your cap; try again.",
        code="gpu_taken",
    )


async def _book_group(
    conn: Conn,
    c: best.Criteria,
    group: list[Row],
    *,
    placement: str,
    client_id: str,
    now: datetime,
    settings: Settings,
) -> BookedGang:
    gang_id = new_id("gng")
    await conn.execute(_INSERT, gang_id, client_id, placement, len(group), now)
    gpu_ids = sorted(row["id"] for row in group)
    timeout = settings.heartbeat_timeout_seconds
    locked = [await service.lock_gpu(conn, g, now=now, heartbeat_timeout=timeout) for g in gpu_ids]
    start = c.start
    for _ in range(3):  # from the latest moment a GPU of the group is free

        async def lines(start: datetime | None = start) -> list[service.Booked]:
            return await _book_lines(
                conn, c, gpu_ids, locked, gang_id, client_id, start, now, settings
            )

        try:
            booked = await conn.attempt(lines)
        except _Later as later:
            start = later.start
            continue
        gang = Gang(gang_id, client_id, placement, len(group), now, [b.booking for b in booked])
        return BookedGang(gang, sum(len(b.displaced) for b in booked))
    raise Conflict("The GPUs of this gang could not be aligned; try again.", code="gpu_taken")


async def _book_lines(
    conn: Conn,
    c: best.Criteria,
    gpu_ids: list[str],
    locked: list[service.GpuLock],
    gang_id: str,
    client_id: str,
    start: datetime | None,
    now: datetime,
    settings: Settings,
) -> list[service.Booked]:
    booked = []
    for gpu_id, gpu in zip(gpu_ids, locked, strict=True):
        request = service.BookingRequest(
            gpu_id=gpu_id,
            client_id=client_id,
            seconds=c.seconds,
            start=start,
            max_price_units=c.max_price_units,
            rental_type=c.rental_type,
            bid_units=c.bid_units,
            gang_id=gang_id,
        )
        booked.append(await service.book(conn, request, now=now, settings=settings, locked=gpu))
    starts = {b.booking.start_time for b in booked}
    if len(starts) > 1:
        raise _Later(max(starts))
    return booked


async def get_gang(conn: Conn, *, gang_id: str, principal: Principal) -> Gang:
    row = await conn.fetchrow(_GANG, gang_id)
    if row is None or (principal.role != "admin" and row["client_id"] != principal.owner_id):
        raise NotFound(f"No gang {gang_id!r}.", code="gang_not_found")
    lines = [BookingRecord.from_row(r) for r in await conn.fetch(_LINES, gang_id)]
    return Gang(
        row["id"], row["client_id"], row["placement"], row["size"], as_time(row["created_at"]),
        lines,
    )  # fmt: skip


async def _lock(conn: Conn, gang_id: str, principal: Principal) -> Gang:
    """The gang with every GPU's lock (by GPU id) and every booking's (by booking id): the
    order of any transaction that locks several bookings (bookings.preemption)."""
    gang = await get_gang(conn, gang_id=gang_id, principal=principal)
    for gpu_id in sorted({line.gpu_id for line in gang.lines}):
        await service.lock_gpu_row(conn, gpu_id)
    fresh = {}
    for booking_id in sorted(line.id for line in gang.lines):
        found = await conn.fetchrow(_LINE_LOCKED, booking_id)
        assert found is not None  # a booking is never deleted
        fresh[booking_id] = BookingRecord.from_row(found)
    return replace(gang, lines=[fresh[line.id] for line in gang.lines])


def _going(gang: Gang, now: datetime) -> list[BookingRecord]:
    return [line for line in gang.lines if lifecycle.live(line, now)]


async def release_gang(
    conn: Conn, *, gang_id: str, principal: Principal, now: datetime, fee_bps: int,
    policy: Policy,
) -> tuple[Gang, dict[str, service.Released]]:  # fmt: skip
    """End every booking of the gang that has not ended: used time charged, the rest
    refunded (a reservation cancelled)."""
    gang = await _lock(conn, gang_id, principal)
    going = _going(gang, now)
    if not going:
        raise Conflict("This gang has already ended.", code="nothing_to_release")
    done = {
        line.id: await service.release_locked(conn, line, now=now, fee_bps=fee_bps, policy=policy)
        for line in going
    }
    lines = [done[line.id].booking if line.id in done else line for line in gang.lines]
    return replace(gang, lines=lines), done


async def extend_gang(
    conn: Conn, *, gang_id: str, seconds: int, max_seconds: int, principal: Principal,
    now: datetime, fee_bps: int, policy: Policy,
) -> Gang:  # fmt: skip
    """Add ``seconds`` to every booking of the gang, or to none: each must not have ended,
    and each GPU must be free for the added time."""
    gang = await _lock(conn, gang_id, principal)
    if len(_going(gang, now)) != len(gang.lines):
        raise Conflict(
            "Only a gang none of whose bookings has ended can be extended.", code="booking_ended"
        )
    lines = []
    for line in gang.lines:
        extended = await service.extend_locked(
            conn, line, seconds=seconds, max_seconds=max_seconds, now=now, fee_bps=fee_bps,
            policy=policy,
        )  # fmt: skip
        lines.append(extended)
    return replace(gang, lines=lines)


async def release_booking(
    conn: Conn, *, booking_id: str, principal: Principal, now: datetime, fee_bps: int,
    policy: Policy,
) -> service.Released:  # fmt: skip
    """Release a booking; one of a gang releases the whole gang."""
    place = await service.place_of(conn, booking_id)
    if place.gang_id is None:
        return await service.release_booking(
            conn, booking_id=booking_id, principal=principal, now=now, fee_bps=fee_bps,
            policy=policy, place=place,
        )  # fmt: skip
    try:
        gang, done = await release_gang(
            conn,
            gang_id=place.gang_id,
            principal=principal,
            now=now,
            fee_bps=fee_bps,
            policy=policy,
        )
    except NotFound:  # another client's booking is not the caller's to see
        raise NotFound(f"No booking {booking_id!r}.", code="booking_not_found") from None
    if booking_id in done:
        return done[booking_id]
    # It had ended already (its miner went away): the rest of its gang was released.
    line = next(line for line in gang.lines if line.id == booking_id)
    ended = lifecycle.ended_at(line, now) or now
    return service.Released(line, lifecycle.served_seconds(line, ended))


async def extend_booking(
    conn: Conn, *, booking_id: str, seconds: int, max_seconds: int, principal: Principal,
    now: datetime, fee_bps: int, policy: Policy,
) -> BookingRecord:  # fmt: skip
    """Extend a booking; one of a gang extends the whole gang."""
    place = await service.place_of(conn, booking_id)
    if place.gang_id is None:
        return await service.extend(
            conn, booking_id=booking_id, seconds=seconds, max_seconds=max_seconds,
            principal=principal, now=now, fee_bps=fee_bps, policy=policy, place=place,
        )  # fmt: skip
    try:
        gang = await extend_gang(
            conn, gang_id=place.gang_id, seconds=seconds, max_seconds=max_seconds,
            principal=principal, now=now, fee_bps=fee_bps, policy=policy,
        )  # fmt: skip
    except NotFound:
        raise NotFound(f"No booking {booking_id!r}.", code="booking_not_found") from None
    return next(line for line in gang.lines if line.id == booking_id)


def public(gang: Gang, now: datetime, policy: Policy) -> dict[str, Any]:
    """The ``GangPublic`` shape: the gang as its order, its bookings as the lines."""
    lines = [records.public(line, now, policy) for line in gang.lines]
    standings = [records.standing(line, now, policy) for line in gang.lines]
    statuses = {line["status"] for line in lines}
    first = gang.lines[0]
    return {
        "gang_id": gang.id,
        "client_id": gang.client_id,
        "placement": gang.placement,
        "size": gang.size,
        "rental_type": first.rental_type,
        "status": statuses.pop() if len(statuses) == 1 else "mixed",
        "start_time": iso(first.start_time),
        "end_time": iso(first.end_time),
        "price_per_hour": units_text(sum(line.price_units for line in gang.lines)),
        "total_cost": units_text(sum(line.total_units for line in gang.lines)),
        "amount_charged": units_text(sum(stands.charged for stands in standings)),
        "refund": units_text(sum(stands.refunded for stands in standings)),
        "created_at": iso(gang.created_at),
        "lines": lines,
    }
