from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aitbc.gpus.schemas import AiModelList, ModelName, PricingMode
from aitbc.kit.money import MoneyIn

MinerStatus = Literal["online", "draining", "offline"]


class MinerGpuSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot: str | None = Field(
        default=None,
        max_length=128,
        description="The miner's own name for the device; defaults to its index in the list.",
    )
    model: ModelName
    memory_gb: int = Field(ge=0, le=4096)
    cuda_version: str | None = Field(default=None, max_length=16)
    compute_capability: str | None = Field(default=None, max_length=16)
    cuda_cores: int | None = Field(default=None, ge=0, le=10_000_000)
    ai_models: list[str] = AiModelList
    price_per_hour: MoneyIn = Field(le=Decimal(1_000_000))
    pricing_mode: PricingMode = "fixed"
    description: str | None = Field(default=None, max_length=2000)


class MinerRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpus: list[MinerGpuSpec] = Field(min_length=1, max_length=64)
    concurrency: int = Field(default=1, ge=1, le=1024)
    region: str | None = Field(default=None, max_length=64)
    capabilities: dict[str, Any] = Field(
        default_factory=dict, description="Anything else the miner wants to advertise."
    )


class GpuHealth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot: str = Field(max_length=128)
    temperature_c: float | None = Field(default=None, ge=-50, le=200)
    utilization_pct: float | None = Field(default=None, ge=0, le=100)
    memory_used_gb: float | None = Field(default=None, ge=0, le=4096)


class MinerHeartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: MinerStatus = "online"
    inflight: int = Field(default=0, ge=0, le=100_000)
    gpus: list[GpuHealth] = Field(default_factory=list, max_length=64)


class MinerGpuRef(BaseModel):
    slot: str
    gpu_id: str


class MinerPublic(BaseModel):
    miner_id: str
    region: str | None
    concurrency: int
    inflight: int
    status: MinerStatus
    last_heartbeat: datetime
    gpus: list[MinerGpuRef]
