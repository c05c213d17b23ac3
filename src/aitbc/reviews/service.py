"""Verified reviews and their aggregates. The GPU's ``rating_sum`` and ``review_count`` move
by atomic SQL increments in the review's own transaction, so they never drift from the
visible reviews, however many are written at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from aitbc.auth.principal import Principal
from aitbc.errors import Conflict, Forbidden, NotFound
from aitbc.events.log import emit
from aitbc.kit.ids import new_id
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Query, built
from aitbc.store.records import record
from aitbc.store.values import as_time, iso

_COLUMNS = (
    "id, gpu_id, client_id, rating, comment, verified, flag_count, created_at, updated_at, "
    "hidden_at"
)
_ORDER = {
    "newest": "created_at DESC, id DESC",
    "oldest": "created_at ASC, id ASC",
    "highest": "rating DESC, created_at DESC, id DESC",
    "lowest": "rating ASC, created_at DESC, id DESC",
}
_GPU = Query("SELECT rating_sum, review_count, miner_id FROM gpus WHERE id = $1")
_ADJUST = Query(
    "UPDATE gpus SET rating_sum = rating_sum + $2, review_count = review_count + $3 WHERE id = $1"
)
# A booking of the client's that ran on the GPU: begun, and not ended at or before its start
# (cancelled, or preempted or interrupted before its window opened).
_STARTED_BOOKING = Query(
    "SELECT 1 FROM bookings WHERE gpu_id = $1 AND client_id = $2 AND start_time <= $3 "
    "AND status <> 'cancelled' AND (ended_at IS NULL OR ended_at > start_time) LIMIT 1"
)
_ALREADY = Query("SELECT id FROM reviews WHERE gpu_id = $1 AND client_id = $2")
_INSERT = Query(
    "INSERT INTO reviews (id, gpu_id, client_id, rating, comment, verified, flag_count, "
    "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7) ON CONFLICT DO NOTHING"
)
_LOCKED = Query(f"SELECT {_COLUMNS} FROM reviews WHERE id = $1 FOR UPDATE")
_EDIT = Query("UPDATE reviews SET rating = $2, comment = $3, updated_at = $4 WHERE id = $1")
_FLAG = Query(
    "INSERT INTO review_flags (review_id, flagger_id, reason, created_at) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
)
_COUNT_FLAG = Query("UPDATE reviews SET flag_count = flag_count + 1 WHERE id = $1")
_HIDE = Query("UPDATE reviews SET hidden_at = $2, hidden_by = $3 WHERE id = $1")
_STARS = Query(
    "SELECT rating, count(*) FROM reviews WHERE gpu_id = $1 AND hidden_at IS NULL GROUP BY rating"
)
_RATINGS = Query(
    "SELECT rating, created_at FROM reviews WHERE gpu_id = $1 AND hidden_at IS NULL "
    "ORDER BY created_at"
)


ReviewSort = Literal["newest", "oldest", "highest", "lowest"]


@dataclass(slots=True)
class Review:
    id: str
    gpu_id: str
    client_id: str
    rating: int
    comment: str | None
    verified: bool
    flag_count: int
    created_at: datetime
    updated_at: datetime
    hidden_at: datetime | None
    flag_reasons: list[str] = field(default_factory=list)  # read for moderators only

    @classmethod
    def from_row(cls, row: Row) -> Review:
        return record(cls, row, flag_reasons=[])


@dataclass(frozen=True, slots=True)
class Rated:
    """A review as saved, with its GPU's aggregate after it."""

    review: Review
    rating_sum: int
    review_count: int


@dataclass(frozen=True, slots=True)
class GpuRating:
    gpu_id: str
    rating_sum: int
    review_count: int
    stars: dict[int, int]  # visible reviews per star
    reviews: list[Review]


@dataclass(frozen=True, slots=True)
class RatingPeriod:
    """A day or week of reviews: its start, the running totals up to its end, and its own."""

    start: datetime
    total: int
    count: int
    new_total: int
    new_count: int


async def _require_gpu(conn: Conn, gpu_id: str) -> Row:
    row = await conn.fetchrow(_GPU, gpu_id)
    if row is None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")
    return row


async def _adjust(conn: Conn, gpu_id: str, *, rating_delta: int, count_delta: int) -> None:
    await conn.execute(_ADJUST, gpu_id, rating_delta, count_delta)


async def _rated(conn: Conn, review: Review) -> Rated:
    gpu = await _require_gpu(conn, review.gpu_id)
    return Rated(review, gpu["rating_sum"], gpu["review_count"])


async def create(
    conn: Conn, *, gpu_id: str, client_id: str, rating: int, comment: str | None, now: datetime
) -> Rated:
    gpu = await _require_gpu(conn, gpu_id)
    if await conn.fetchval(_STARTED_BOOKING, gpu_id, client_id, now) is None:
        raise Forbidden(
            "Only a client whose booking of this GPU has started may review it.",
            code="review_not_verified",
        )
    review_id = new_id("rev")
    made = await conn.execute(_INSERT, review_id, gpu_id, client_id, rating, comment, True, now)
    if not made:  # this client's review of the GPU exists (perhaps written just now)
        found = await conn.fetchval(_ALREADY, gpu_id, client_id)
        raise Conflict(
            f"You have already reviewed this GPU (review {found}); edit it with "
            f"PUT /v1/marketplace/reviews/{found} (aitbc marketplace edit-review {found}).",
            code="review_exists",
        )
    await _adjust(conn, gpu_id, rating_delta=rating, count_delta=1)
    review = Review(review_id, gpu_id, client_id, rating, comment, True, 0, now, now, None)
    emit(
        conn,
        "review.posted",
        subject_id=review_id,
        data={
            "review_id": review_id,
            "gpu_id": gpu_id,
            "rating": rating,
            "comment": comment,
            "created_at": iso(now),
        },
        owners=(gpu["miner_id"],),
        at=now,
    )
    return await _rated(conn, review)


def _missing(review_id: str) -> NotFound:
    return NotFound(f"No review {review_id!r}.", code="review_not_found")


async def _locked_review(conn: Conn, review_id: str) -> Review:
    row = await conn.fetchrow(_LOCKED, review_id)
    if row is None:
        raise _missing(review_id)
    return Review.from_row(row)


async def edit(
    conn: Conn,
    *,
    review_id: str,
    principal: Principal,
    rating: int,
    comment: str | None,
    now: datetime,
) -> Rated:
    review = await _locked_review(conn, review_id)
    if review.client_id != principal.owner_id:
        if review.hidden_at is not None:  # shown to nobody but its author and moderators
            raise _missing(review_id)
        raise Forbidden("Only its author may edit a review.", code="not_review_author")
    if review.hidden_at is None:
        await _adjust(conn, review.gpu_id, rating_delta=rating - review.rating, count_delta=0)
    await conn.execute(_EDIT, review_id, rating, comment, now)
    review.rating, review.comment, review.updated_at = rating, comment, now
    return await _rated(conn, review)


async def flag(
    conn: Conn, *, review_id: str, principal: Principal, reason: str, now: datetime
) -> Review:
    review = await _locked_review(conn, review_id)
    if review.hidden_at is not None:  # moderated already, and not shown outside moderation
        raise _missing(review_id)
    if principal.owner_id == review.client_id:
        raise Conflict(
            "This is your own review: change it (PUT /v1/marketplace/reviews/{id}, `aitbc "
            "marketplace edit-review`) rather than flag it.",
            code="own_review",
        )
    if not await conn.execute(_FLAG, review_id, principal.owner_id, reason, now):
        raise Conflict("You have already flagged this review.", code="already_flagged")
    await conn.execute(_COUNT_FLAG, review_id)
    review.flag_count += 1
    return review


async def set_hidden(
    conn: Conn, *, review_id: str, hidden: bool, admin_id: str, now: datetime
) -> Review:
    review = await _locked_review(conn, review_id)
    if hidden and review.hidden_at is None:
        await conn.execute(_HIDE, review_id, now, admin_id)
        await _adjust(conn, review.gpu_id, rating_delta=-review.rating, count_delta=-1)
        review.hidden_at = now
    elif not hidden and review.hidden_at is not None:
        await conn.execute(_HIDE, review_id, None, None)
        await _adjust(conn, review.gpu_id, rating_delta=review.rating, count_delta=1)
        review.hidden_at = None
    return (await _with_reasons(conn, [review]))[0]


async def _with_reasons(conn: Conn, reviews: list[Review]) -> list[Review]:
    """The reviews with the reasons they were flagged for (for moderators)."""
    by_id = {r.id: r for r in reviews}
    if by_id:
        marks = ", ".join(f"${i}" for i in range(1, len(by_id) + 1))
        query = built(
            f"SELECT review_id, reason FROM review_flags WHERE review_id IN ({marks}) ORDER BY id"
        )
        for review_id, reason in await conn.fetch_values(query, *by_id):
            by_id[review_id].flag_reasons.append(reason)
    return reviews


async def flagged(conn: Conn, *, include_hidden: bool, limit: int, offset: int) -> list[Review]:
    shown = "" if include_hidden else "AND hidden_at IS NULL "
    query = built(
        f"SELECT {_COLUMNS} FROM reviews WHERE flag_count > 0 {shown}"
        "ORDER BY flag_count DESC, created_at DESC, id LIMIT $1 OFFSET $2"
    )
    found = [Review.from_row(row) for row in await conn.fetch(query, limit, offset)]
    return await _with_reasons(conn, found)


async def for_gpu(
    conn: Conn, *, gpu_id: str, sort: ReviewSort, limit: int, offset: int
) -> GpuRating:
    gpu = await _require_gpu(conn, gpu_id)
    stars = {rating: count for rating, count in await conn.fetch_values(_STARS, gpu_id)}
    query = built(
        f"SELECT {_COLUMNS} FROM reviews WHERE gpu_id = $1 AND hidden_at IS NULL "
        f"ORDER BY {_ORDER[sort]} LIMIT $2 OFFSET $3"
    )
    reviews = [Review.from_row(row) for row in await conn.fetch(query, gpu_id, limit, offset)]
    return GpuRating(gpu_id, gpu["rating_sum"], gpu["review_count"], stars, reviews)


def _period_start(moment: datetime, bucket: str) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if bucket == "week" else day


async def rating_history(
    conn: Conn, *, gpu_id: str, bucket: str, since: datetime | None
) -> list[RatingPeriod]:
    """The running totals of visible reviews at the end of each day or week (reviews count
    with their current rating from the period they were written in)."""
    await _require_gpu(conn, gpu_id)
    periods: dict[datetime, list[int]] = {}
    for rating, created_at in await conn.fetch_values(_RATINGS, gpu_id):
        periods.setdefault(_period_start(as_time(created_at), bucket), []).append(rating)
    points, total, count = [], 0, 0
    for start, ratings in periods.items():
        total += sum(ratings)
        count += len(ratings)
        if since is not None and start < _period_start(since.astimezone(UTC), bucket):
            continue
        points.append(RatingPeriod(start, total, count, sum(ratings), len(ratings)))
    return points
