from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aitbc.gpus.schemas import AiModelList, ModelName, PricingMode
from aitbc.kit.copying import copied
from aitbc.kit.money import MoneyOut, PriceIn
from aitbc.kit.types import JSON_INTEGER, JsonInt, RequestModel
from aitbc.miners.service import Earnings

MinerStatus = Literal["online", "draining", "offline"]


class MinerGpuSpec(RequestModel):
    slot: str | None = Field(
        default=None,
        max_length=128,
        description="The miner's own name for the device; defaults to its index in the list.",
    )
    model: ModelName
    memory_gb: JsonInt = Field(ge=0, le=4096)
    cuda_version: str | None = Field(default=None, max_length=16)
    compute_capability: str | None = Field(default=None, max_length=16)
    cuda_cores: Annotated[int, Field(ge=0, le=10_000_000), JSON_INTEGER] | None = None
    ai_models: list[ModelName] = AiModelList
    price_per_hour: PriceIn
    pricing_mode: PricingMode = "fixed"
    description: str | None = Field(default=None, max_length=2000)


class DaemonGpuSpec(MinerGpuSpec):
    """A GPU from a deployed daemon's capabilities: without a price (it keeps the one it
    has, or gets the default)."""

    price_per_hour: PriceIn | None = None  # type: ignore[assignment]


class MinerRegister(RequestModel):
    """Our own shape (``gpus``), or the deployed daemons' (``capabilities`` describing the
    GPU: ``{"gpu": {...}}``, ``{"gpus": [...]}``, or no GPU at all); see miners.protocol."""

    gpus: list[MinerGpuSpec] = Field(default_factory=list, max_length=64)
    concurrency: JsonInt = Field(default=1, ge=1, le=1024)
    region: str | None = Field(default=None, max_length=64)
    capabilities: dict[str, Any] = Field(
        default_factory=dict,
        description="The miner's hardware as deployed daemons describe it (GPUs in it are "
        "listed at the default price unless ``gpus`` is given), and anything else it "
        "advertises.",
    )

    @model_validator(mode="before")
    @classmethod
    def _older_hosts(cls, data: Any) -> Any:
        """Older daemons send ``gpus: [{"name", "memory_mb"}]`` at the top level: that is a
        description of the hardware (capabilities), not our priced GPU entries."""
        if not isinstance(data, dict) or not isinstance(data.get("gpus"), list):
            return data
        gpus = data["gpus"]
        older = bool(gpus) and all(
            isinstance(g, dict) and "name" in g and not {"model", "price_per_hour"} & set(g)
            for g in gpus
        )
        if not older or "capabilities" in data:
            return data
        rest = {k: v for k, v in data.items() if k != "gpus"}
        return rest | {"capabilities": {"gpus": gpus}}


class CapabilitiesUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    capabilities: dict[str, Any]


class GpuHealth(RequestModel):
    slot: str = Field(max_length=128)
    temperature_c: float | None = Field(default=None, ge=-50, le=200)
    utilization_pct: float | None = Field(default=None, ge=0, le=100)
    memory_used_gb: float | None = Field(default=None, ge=0, le=4096)
    memory_total_gb: float | None = Field(default=None, ge=0, le=4096)


class MinerHeartbeat(BaseModel):
    """Our own shape (``status`` online/draining/offline, per-GPU ``gpus``), or the deployed
    daemons' (any ``status`` word, the whole host's ``gpu_utilization``, ``memory_used`` and
    ``memory_total`` in MB); every field is optional, unknown ones are ignored."""

    model_config = ConfigDict(extra="ignore")

    status: str = Field(default="online", max_length=32)
    inflight: Annotated[int, Field(ge=0, le=100_000), JSON_INTEGER] | None = None
    current_jobs: Annotated[int, Field(ge=0, le=100_000), JSON_INTEGER] | None = None
    gpus: list[GpuHealth] = Field(default_factory=list, max_length=64)
    gpu_utilization: float | None = Field(default=None, ge=0, le=100)
    memory_used: float | None = Field(default=None, ge=0, le=4_194_304, description="MB")
    memory_total: float | None = Field(default=None, ge=0, le=4_194_304, description="MB")
    temperature: float | None = Field(default=None, ge=-50, le=200, description="°C")
    metadata: dict[str, Any] | None = None


class MinerGpuRef(BaseModel):
    slot: str
    gpu_id: str


class PreemptionNotice(BaseModel):
    booking_id: str
    gpu_id: str
    job_id: str | None = Field(description="The job running on the booking: stop it")
    gpu_taken_at: datetime = Field(description="When the GPU passes to the preempting booking")


class MinerPublic(BaseModel):
    miner_id: str
    deregistered_at: datetime | None = None
    region: str | None
    concurrency: int
    inflight: int
    status: MinerStatus
    last_heartbeat: datetime
    gpus: list[MinerGpuRef]
    preemptions: list[PreemptionNotice] = Field(
        default_factory=list,
        description="In a heartbeat's answer: the miner's bookings that were outbid and are in "
        "their notice now (as the `booking.preempted` event told); empty elsewhere",
    )


class GpuEarnings(BaseModel):
    gpu_id: str
    model: str
    earned: MoneyOut = Field(description="Paid for this GPU's bookings in the range")
    bookings_paid: int


class MinerEarnings(BaseModel):
    miner_id: str
    from_time: datetime | None
    to_time: datetime | None
    earned: MoneyOut = Field(description="Paid to the miner in the range, less platform fees")
    bookings_paid: int
    jobs_completed: int
    pending: MoneyOut = Field(
        description="Held in escrow for its bookings that have not ended (paid as they end)"
    )
    currency: str = "AITBC"
    by_gpu: list[GpuEarnings] = Field(description="The same by GPU, most earned first")

    @classmethod
    def of(cls, found: Earnings) -> MinerEarnings:
        return copied(
            cls,
            found,
            from_time=found.since,
            to_time=found.until,
            by_gpu=[copied(GpuEarnings, g) for g in found.by_gpu],
        )
