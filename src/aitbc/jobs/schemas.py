from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from aitbc.bookings.schemas import RentalType
from aitbc.jobs.queries import JobRecord
from aitbc.jobs.service import Handed, Job, cost_units, effective_state, seconds_charged
from aitbc.kit.clock import hours_from_seconds
from aitbc.kit.copying import copied
from aitbc.kit.hours import HoursIn
from aitbc.kit.money import AmountIn, MoneyOut, PositivePriceIn, PriceIn, from_units
from aitbc.kit.types import JSON_INTEGER, JsonInt, RequestModel

JobState = Literal["queued", "assigned", "running", "completed", "failed", "expired", "cancelled"]


_STATES: tuple[str, ...] = get_args(JobState)
# The deployed clients' words for a state: the old server's upper case, its CANCELED, and
# nothing at all (``status=``: any state).
_OLD_WORDS: dict[str, str | None] = {s.upper(): s for s in _STATES}
_OLD_WORDS |= {"CANCELED": "cancelled", "": None}


def _state_word(value: object) -> object:
    return _OLD_WORDS.get(value, value) if isinstance(value, str) else value


# A filter by state (a query parameter's type), in our words or the deployed clients'.
StateFilter = Annotated[
    JobState | None,
    BeforeValidator(_state_word),
    WithJsonSchema({"type": "string", "enum": [*_STATES, *_OLD_WORDS]}),
]


class JobConstraints(RequestModel):
    """What the GPU must offer. Our names, or the deployed clients' (``gpu``,
    ``min_vram_gb``, ``models``, ``cuda``, ``max_price``): both are accepted."""

    gpu_model: str | None = Field(default=None, max_length=128)
    memory_min_gb: Annotated[int, Field(ge=0, le=4096), JSON_INTEGER] | None = None
    ai_model: str | None = Field(default=None, max_length=128)
    region: str | None = Field(default=None, max_length=64)
    max_price_per_hour: PriceIn | None = None
    cuda: str | None = Field(
        default=None, max_length=16, description="Lowest CUDA version the job runs on"
    )
    # The deployed clients' names for the same things.
    gpu: str | None = Field(default=None, max_length=128, description="= gpu_model")
    min_vram_gb: Annotated[int, Field(ge=0, le=4096), JSON_INTEGER] | None = Field(
        default=None, description="= memory_min_gb"
    )
    models: list[str] | None = Field(
        default=None, max_length=1, description="= ai_model (one model)"
    )
    max_price: PriceIn | None = Field(default=None, description="= max_price_per_hour")

    @model_validator(mode="after")
    def _one_vocabulary(self) -> JobConstraints:
        self.gpu_model = self.gpu_model or self.gpu
        self.memory_min_gb = (
            self.memory_min_gb if self.memory_min_gb is not None else self.min_vram_gb
        )
        self.ai_model = self.ai_model or (self.models[0] if self.models else None)
        self.max_price_per_hour = (
            self.max_price_per_hour if self.max_price_per_hour is not None else self.max_price
        )
        return self


class JobConstraintsPublic(BaseModel):
    gpu_model: str | None
    memory_min_gb: int | None
    ai_model: str | None
    region: str | None
    max_price_per_hour: MoneyOut | None
    cuda: str | None

    @classmethod
    def of(cls, job: JobRecord) -> JobConstraintsPublic:
        price = job.max_price_units
        return copied(
            cls,
            job,
            gpu_model=job.gpu_model_key,
            ai_model=job.ai_model_key,
            max_price_per_hour=None if price is None else from_units(price),
            cuda=job.cuda_min,
        )


def _terms(job: JobRecord) -> dict[str, Any]:
    """A job's id and what it asks for, as its client and its miner see them."""
    return {
        "job_id": job.id,
        "constraints": JobConstraintsPublic.of(job),
        "duration_hours": hours_from_seconds(job.duration_seconds),
    }


class JobCreate(RequestModel):
    """Our shape, or the deployed clients' (no duration: the booking is sized by
    ``AITBC_JOB_DEFAULT_HOURS`` and the client pays only for the time the job runs;
    ``payment_amount`` caps what it may cost)."""

    payload: dict[str, Any] = Field(default_factory=dict)
    constraints: JobConstraints = Field(default_factory=JobConstraints)
    duration_hours: HoursIn | None = None
    ttl_seconds: JsonInt = Field(default=3600, ge=60, le=7 * 86_400)
    payment_amount: AmountIn | None = Field(default=None, description="The most the job may cost")
    payment_currency: Literal["AITBC"] = "AITBC"
    rental_type: RentalType = Field(
        default="on_demand",
        description="`on_demand` (the default), or `interruptible`: the job runs on a GPU its "
        "bid wins and goes back to the queue when a higher bid or an on-demand booking "
        "preempts it (docs/market.md)",
    )
    bid_per_hour: PositivePriceIn | None = Field(
        default=None,
        description="An interruptible job's bid per hour (required for `interruptible`)",
    )


class JobResult(RequestModel):
    """A miner's result: any JSON value (an object, a list, the plain string some clients
    send...), with optional metrics; ``success: false`` reports a failure instead."""

    result: Any = Field(default_factory=dict, description="Any JSON value")
    metrics: dict[str, Any] | None = None
    success: bool = True


def _clip(most: int) -> BeforeValidator:
    """A report's text cut to ``most`` characters: a daemon's traceback is taken, not
    refused (a refused failure leaves its job running on the client's money)."""
    return BeforeValidator(lambda v: v[:most] if isinstance(v, str) else v)


ReportText = Annotated[str | None, _clip(2000)]
ReportCode = Annotated[str | None, _clip(128)]


class JobFailure(RequestModel):
    """Our ``error``, or the deployed daemons' ``error_code`` and ``error_message``."""

    model_config = ConfigDict(
        # What _something_said asks, in the document's words.
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string", "minLength": 1}}}
                for name in ("error", "error_code", "error_message")
            ]
        },
    )

    error: ReportText = Field(default=None, min_length=1, description="Cut to 2000 characters")
    error_code: ReportCode = Field(default=None, description="Cut to 128 characters")
    error_message: ReportText = Field(default=None, description="Cut to 2000 characters")
    metrics: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _something_said(self) -> JobFailure:
        if not (self.error or self.error_code or self.error_message):
            raise ValueError("say what went wrong: error, or error_code and error_message")
        return self

    def text(self) -> str:
        if self.error:
            return self.error
        return ": ".join(part for part in (self.error_code, self.error_message) if part)


class MinerPoll(BaseModel):
    model_config = ConfigDict(extra="ignore")

    max_wait_seconds: float = Field(
        default=0, ge=0, description="Wait this long for a job (at most 30 s) before 204"
    )
    claim: bool = Field(
        default=False,
        description="Hand the job over as a claim: confirm it with POST "
        "/v1/miners/jobs/{job_id}/start within AITBC_JOB_CLAIM_SECONDS, or it goes back "
        "for another poll and the time is not charged",
    )


class JobPublic(BaseModel):
    job_id: str
    state: JobState
    type: str | None = Field(description="The payload's type, when it has one")
    client_id: str
    constraints: JobConstraintsPublic
    duration_hours: Decimal
    gpu_id: str | None
    miner_id: str | None
    assigned_miner_id: str | None = Field(description="= miner_id (the deployed clients' name)")
    booking_id: str | None
    cost: MoneyOut = Field(description="Charged for the job so far")
    result: Any
    metrics: dict[str, Any] | None
    error: str | None
    created_at: datetime
    requested_at: datetime = Field(description="= created_at (the deployed clients' name)")
    expires_at: datetime
    assigned_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    rental_type: RentalType
    bid_per_hour: MoneyOut | None = Field(description="An interruptible job's bid")

    @classmethod
    def of(cls, found: Job, now: datetime) -> JobPublic:
        job = found.job
        return copied(
            cls,
            job,
            **_terms(job),
            state=effective_state(job, now),
            type=job.job_type,
            assigned_miner_id=job.miner_id,
            cost=from_units(cost_units(job, found.booking, now)),
            requested_at=job.created_at,
            rental_type="on_demand" if job.bid_units is None else "interruptible",
            bid_per_hour=None if job.bid_units is None else from_units(job.bid_units),
        )


class JobOutcome(BaseModel):
    job_id: str
    state: JobState
    result: Any
    error: str | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: JobRecord, now: datetime) -> JobOutcome:
        state = effective_state(job, now)
        return copied(
            cls,
            job,
            job_id=job.id,
            state=state,
            finished_at=job.finished_at or (job.expires_at if state == "expired" else None),
        )


class Receipt(BaseModel):
    """What ran, where, for how long, at what cost."""

    job_id: str
    state: JobState
    type: str | None
    gpu_id: str | None
    gpu_model: str | None
    miner_id: str | None
    booking_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    seconds_charged: int = Field(description="Seconds of GPU time paid for")
    price_per_hour: MoneyOut | None
    cost: MoneyOut
    refunded: MoneyOut

    @classmethod
    def of(cls, found: Job, now: datetime) -> Receipt:
        job, booking = found.job, found.booking
        return copied(
            cls,
            job,
            job_id=job.id,
            state=effective_state(job, now),
            type=job.job_type,
            gpu_model=found.gpu_model,
            seconds_charged=seconds_charged(job, booking, now),
            price_per_hour=None if booking is None else from_units(booking.price_units),
            cost=from_units(cost_units(job, booking, now)),
            refunded=from_units(
                0 if booking is None else booking.refunded_units + booking.outage_refund_units
            ),
        )


class MinerJob(BaseModel):
    job_id: str
    gpu_id: str
    booking_id: str
    payload: dict[str, Any]
    constraints: JobConstraintsPublic
    duration_hours: Decimal
    expires_at: datetime
    booking_ends_at: datetime
    claim_expires_at: datetime | None = Field(
        default=None,
        description="With a claimed poll: confirm by then (POST .../start) or the job goes back",
    )

    @classmethod
    def of(cls, handed: Handed) -> MinerJob:
        job = handed.job
        return copied(cls, job, **_terms(job), booking_ends_at=handed.booking_ends_at)
