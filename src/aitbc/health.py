from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel
from sqlalchemy import text

from aitbc import metrics
from aitbc.deps import ClockDep, SessionDep, SettingsDep
from aitbc.errors import error_responses
from aitbc.gpus.query import count_by_status
from aitbc.kit.routing import APIRouter

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    database: str


@router.get(
    "/health",
    response_model=Health,
    responses=error_responses(503),
    summary="Liveness with a database round trip",
)
def health(session: SessionDep) -> Health:
    session.execute(text("SELECT 1"))
    return Health(status="ok", database=session.get_bind().dialect.name)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {metrics.CONTENT_TYPE: {}}}},
    summary="Prometheus metrics",
)
def prometheus_metrics(session: SessionDep, clock: ClockDep, settings: SettingsDep) -> Response:
    body = metrics.render(
        lambda: count_by_status(
            session, now=clock.now(), heartbeat_timeout=settings.heartbeat_timeout_seconds
        )
    )
    return Response(body, media_type=metrics.CONTENT_TYPE)
