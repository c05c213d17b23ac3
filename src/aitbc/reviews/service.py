"""Verified reviews and their aggregates. The GPU's ``rating_sum`` and ``review_count`` move
by atomic SQL increments in the review's own transaction, so they never drift from the
visible reviews, however many are written at once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aitbc.auth.principal import Principal
from aitbc.errors import Conflict, Forbidden, NotFound
from aitbc.gpus.query import average_rating
from aitbc.kit.ids import new_id
from aitbc.models import Booking, Gpu, Review, ReviewFlag
from aitbc.reviews.schemas import (
    GpuReviews,
    RatingPoint,
    ReviewAdmin,
    ReviewCreate,
    ReviewPublic,
    ReviewSaved,
    ReviewSort,
)

_ORDER = {
    "newest": (Review.created_at.desc(), Review.id.desc()),
    "oldest": (Review.created_at.asc(), Review.id.asc()),
    "highest": (Review.rating.desc(), Review.created_at.desc(), Review.id.desc()),
    "lowest": (Review.rating.asc(), Review.created_at.desc(), Review.id.desc()),
}


def _public(review: Review) -> ReviewPublic:
    return ReviewPublic(
        review_id=review.id,
        gpu_id=review.gpu_id,
        rating=review.rating,
        comment=review.comment,
        reviewer_id=review.client_id,
        verified=review.verified,
        created_at=review.created_at,
        updated_at=review.updated_at,
    )


def _require_gpu(session: Session, gpu_id: str) -> None:
    if session.scalar(select(Gpu.id).where(Gpu.id == gpu_id)) is None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")


def _adjust(session: Session, gpu_id: str, *, rating_delta: int, count_delta: int) -> None:
    session.execute(
        update(Gpu)
        .where(Gpu.id == gpu_id)
        .values(
            rating_sum=Gpu.rating_sum + rating_delta,
            review_count=Gpu.review_count + count_delta,
        )
        .execution_options(synchronize_session=False)
    )


def _saved(session: Session, review: Review) -> ReviewSaved:
    rating_sum, count = session.execute(
        select(Gpu.rating_sum, Gpu.review_count).where(Gpu.id == review.gpu_id)
    ).one()
    return ReviewSaved(
        **_public(review).model_dump(),
        average_rating=average_rating(rating_sum, count),
        review_count=count,
    )


def _has_started_booking(session: Session, gpu_id: str, client_id: str, now: datetime) -> bool:
    query = select(
        exists().where(
            Booking.gpu_id == gpu_id,
            Booking.client_id == client_id,
            Booking.start_time <= now,
            Booking.status != "cancelled",
        )
    )
    return bool(session.scalar(query))


def create(
    session: Session, *, gpu_id: str, client_id: str, body: ReviewCreate, now: datetime
) -> ReviewSaved:
    _require_gpu(session, gpu_id)
    if not _has_started_booking(session, gpu_id, client_id, now):
        raise Forbidden(
            "Only a client whose booking of this GPU has started may review it.",
            code="review_not_verified",
        )

    def duplicate() -> Conflict:
        found = session.scalar(already)
        return Conflict(
            f"You have already reviewed this GPU (review {found}); edit it with "
            f"PUT /v1/marketplace/reviews/{found} (aitbc marketplace edit-review {found}).",
            code="review_exists",
        )

    already = select(Review.id).where(Review.gpu_id == gpu_id, Review.client_id == client_id)
    if session.scalar(already) is not None:
        raise duplicate()
    review = Review(
        id=new_id("rev"),
        gpu_id=gpu_id,
        client_id=client_id,
        rating=body.rating,
        comment=body.comment,
        verified=True,
        flag_count=0,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(review)
    except IntegrityError:
        raise duplicate() from None
    _adjust(session, gpu_id, rating_delta=body.rating, count_delta=1)
    return _saved(session, review)


def _missing(review_id: str) -> NotFound:
    return NotFound(f"No review {review_id!r}.", code="review_not_found")


def _locked_review(session: Session, review_id: str) -> Review:
    review = session.get(Review, review_id, with_for_update=True, populate_existing=True)
    if review is None:
        raise _missing(review_id)
    return review


def edit(
    session: Session, *, review_id: str, principal: Principal, body: ReviewCreate, now: datetime
) -> ReviewSaved:
    review = _locked_review(session, review_id)
    if review.client_id != principal.owner_id:
        if review.hidden_at is not None:  # shown to nobody but its author and moderators
            raise _missing(review_id)
        raise Forbidden("Only its author may edit a review.", code="not_review_author")
    if review.hidden_at is None:
        _adjust(session, review.gpu_id, rating_delta=body.rating - review.rating, count_delta=0)
    review.rating = body.rating
    review.comment = body.comment
    review.updated_at = now
    session.flush()
    return _saved(session, review)


def flag(
    session: Session, *, review_id: str, principal: Principal, reason: str, now: datetime
) -> ReviewPublic:
    review = _locked_review(session, review_id)
    if review.hidden_at is not None:  # moderated already, and not shown outside moderation
        raise _missing(review_id)
    try:
        with session.begin_nested():
            session.add(
                ReviewFlag(
                    review_id=review_id,
                    flagger_id=principal.owner_id,
                    reason=reason,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise Conflict("You have already flagged this review.", code="already_flagged") from None
    review.flag_count += 1
    session.flush()
    return _public(review)


def set_hidden(
    session: Session, *, review_id: str, hidden: bool, admin_id: str, now: datetime
) -> ReviewAdmin:
    review = _locked_review(session, review_id)
    if hidden and review.hidden_at is None:
        review.hidden_at, review.hidden_by = now, admin_id
        _adjust(session, review.gpu_id, rating_delta=-review.rating, count_delta=-1)
    elif not hidden and review.hidden_at is not None:
        review.hidden_at, review.hidden_by = None, None
        _adjust(session, review.gpu_id, rating_delta=review.rating, count_delta=1)
    session.flush()
    return _admin_view(session, [review])[0]


def _admin_view(session: Session, reviews: list[Review]) -> list[ReviewAdmin]:
    reasons: dict[str, list[str]] = {r.id: [] for r in reviews}
    rows = session.execute(
        select(ReviewFlag.review_id, ReviewFlag.reason)
        .where(ReviewFlag.review_id.in_(list(reasons)))
        .order_by(ReviewFlag.id)
    )
    for review_id, reason in rows:
        reasons[review_id].append(reason)
    return [
        ReviewAdmin(
            **_public(r).model_dump(),
            hidden=r.hidden_at is not None,
            flag_count=r.flag_count,
            flag_reasons=reasons[r.id],
        )
        for r in reviews
    ]


def flagged(
    session: Session, *, include_hidden: bool, limit: int, offset: int
) -> list[ReviewAdmin]:
    query = select(Review).where(Review.flag_count > 0)
    if not include_hidden:
        query = query.where(Review.hidden_at.is_(None))
    query = query.order_by(Review.flag_count.desc(), Review.created_at.desc(), Review.id)
    return _admin_view(session, list(session.scalars(query.limit(limit).offset(offset))))


def for_gpu(
    session: Session, *, gpu_id: str, sort: ReviewSort, limit: int, offset: int
) -> GpuReviews:
    row = session.execute(select(Gpu.rating_sum, Gpu.review_count).where(Gpu.id == gpu_id)).first()
    if row is None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")
    visible = (Review.gpu_id == gpu_id, Review.hidden_at.is_(None))
    stars = dict(
        session.execute(
            select(Review.rating, func.count()).where(*visible).group_by(Review.rating)
        ).all()
    )
    reviews = session.scalars(
        select(Review).where(*visible).order_by(*_ORDER[sort]).limit(limit).offset(offset)
    )
    return GpuReviews(
        gpu_id=gpu_id,
        average_rating=average_rating(row.rating_sum, row.review_count),
        review_count=row.review_count,
        distribution={str(star): stars.get(star, 0) for star in range(1, 6)},
        reviews=[_public(r) for r in reviews],
    )


def _period_start(moment: datetime, bucket: str) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if bucket == "week" else day


def rating_history(
    session: Session, *, gpu_id: str, bucket: str, since: datetime | None
) -> list[RatingPoint]:
    """The running average of visible reviews at the end of each day or week (reviews count
    with their current rating from the period they were written in)."""
    _require_gpu(session, gpu_id)
    rows = session.execute(
        select(Review.rating, Review.created_at)
        .where(Review.gpu_id == gpu_id, Review.hidden_at.is_(None))
        .order_by(Review.created_at)
    ).all()
    periods: dict[datetime, list[int]] = {}
    for rating, created_at in rows:
        periods.setdefault(_period_start(created_at, bucket), []).append(rating)
    points, total, count = [], 0, 0
    for start, ratings in periods.items():
        total += sum(ratings)
        count += len(ratings)
        if since is not None and start < _period_start(since, bucket):
            continue
        points.append(
            RatingPoint(
                period_start=start,
                average_rating=average_rating(total, count),
                review_count=count,
                new_reviews=len(ratings),
                period_average=average_rating(sum(ratings), len(ratings)),
            )
        )
    return points
