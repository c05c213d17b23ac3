"""Reviews: a GPU's reviews, writing, editing and flagging one, and a GPU's rating history
(drawn as a chart in a table)."""

from __future__ import annotations

import click

from aitbc.cli import views
from aitbc.cli.context import api
from aitbc.cli.http import ApiError, segment
from aitbc.cli.one_request import on_id, paging_options
from aitbc.cli.output import console, emit, show
from aitbc.cli.output import table as rows_table

REVIEW_SORTS = ("newest", "oldest", "highest", "lowest")
PAGE = 500
MAX_PAGES = 20


def _own_review_id(gpu_id: str) -> str | None:
    """The caller's visible review of this GPU, looked up page by page."""
    owner = api().request("GET", "/v1/me")["owner_id"]
    for page in range(MAX_PAGES):
        params = {"limit": PAGE, "offset": page * PAGE, "sort": "oldest"}
        found = api().request(
            "GET", f"/v1/marketplace/gpu/{segment(gpu_id)}/reviews", params=params
        )
        for item in found["reviews"]:
            if item["reviewer_id"] == owner:
                return str(item["review_id"])
        if len(found["reviews"]) < PAGE:
            return None
    return None


@click.command("reviews")
@click.argument("gpu_id")
@paging_options(limit=10, skipped="Reviews")
@click.option("--sort", type=click.Choice(REVIEW_SORTS), default=None, help="Default: newest.")
def reviews(gpu_id: str, limit: int, offset: int | None, sort: str | None) -> None:
    """A GPU's rating, star distribution and reviews."""
    params = {"limit": limit, "offset": offset, "sort": sort}
    emit(
        api().request("GET", f"/v1/marketplace/gpu/{segment(gpu_id)}/reviews", params=params),
        views.GPU_REVIEWS,
    )


@click.command("review")
@click.argument("gpu_id")
@click.option("--rating", type=click.IntRange(1, 5), required=True)
@click.option("--comment", default=None)
def review(gpu_id: str, rating: int, comment: str | None) -> None:
    """Review a GPU you have booked (once; change it later with edit-review)."""
    try:
        saved = api().request(
            "POST",
            f"/v1/marketplace/gpu/{segment(gpu_id)}/reviews",
            json={"rating": rating, "comment": comment},
            expect=(201,),
        )
    except ApiError as exc:
        if exc.code != "review_exists":
            raise
        review_id = _own_review_id(gpu_id)
        if review_id is None:
            raise
        hint = f"{exc.detail} To change it: aitbc marketplace edit-review {review_id} --rating N"
        raise ApiError(exc.status, exc.code, hint) from exc
    emit(saved, views.REVIEW)


edit_review = on_id(
    "edit-review",
    "PUT /v1/marketplace/reviews/{review_id}",
    views.REVIEW,
    click.Option(["--rating"], type=click.IntRange(1, 5), required=True),
    click.Option(["--comment"], default=None, help="The new comment (none if left out)."),
    help="Change your review's rating and comment.",
)


@click.command("flag-review")
@click.argument("review_id")
@click.option("--reason", required=True, help="Why moderators should look at it.")
def flag_review(review_id: str, reason: str) -> None:
    """Flag someone's review for moderation."""
    flagged = api().request(
        "POST",
        f"/v1/marketplace/reviews/{segment(review_id)}/flag",
        json={"reason": reason},
        expect=(201,),
    )
    click.echo(f"flagged review {review_id} for moderation: an admin will look at it", err=True)
    emit(flagged, views.REVIEW)


@click.command("rating-history")
@click.argument("gpu_id")
@click.option("--bucket", type=click.Choice(["day", "week"]), default=None, help="Default: day.")
@click.option("--since", default=None, help="ISO time with zone: only from then on.")
def rating_history(gpu_id: str, bucket: str | None, since: str | None) -> None:
    """A GPU's average rating over time: a chart and the figures per day or week."""
    points = api().request(
        "GET",
        f"/v1/marketplace/gpu/{segment(gpu_id)}/rating-history",
        params={"bucket": bucket, "since": since},
    )
    state = click.get_current_context().find_root().obj
    if state.output != "table" or state.quiet:
        emit(points, views.RATING_POINT)
        return
    out = console()
    from aitbc.cli.chart import rating_chart  # plotext only when a chart is drawn

    click.echo(rating_chart(points, coloured=out.is_terminal, width=out.width))
    if points:
        show(rows_table(points, views.RATING_POINT, state.column_list(), out.is_terminal))
