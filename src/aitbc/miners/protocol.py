"""The deployed miner daemons' words, in ours: the GPUs their ``capabilities`` describe, the
status words of their heartbeats, the host figures of their heartbeats as GPU health."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aitbc.errors import InvalidFields
from aitbc.gpus.schemas import ModelName
from aitbc.kit.copying import built
from aitbc.kit.money import PriceIn
from aitbc.kit.types import JSON_INTEGER
from aitbc.miners.schemas import (
    DaemonGpuSpec,
    MinerGpuSpec,
    MinerHeartbeat,
    MinerRegister,
    MinerStatus,
)
from aitbc.miners.service import Beat, GpuDescription, Registration

MAX_GPUS = 64
_STATUS_WORDS: dict[str, MinerStatus] = {
    "draining": "draining",
    "offline": "offline",
    "stopping": "offline",
    "stopped": "offline",
    "shutdown": "offline",
    "disconnected": "offline",
}


class FieldGpu(BaseModel):
    """One GPU as a daemon describes it: any subset of these, other keys ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=128)
    memory_gb: float | None = Field(default=None, ge=0, le=4096)
    memory_mb: float | None = Field(default=None, ge=0, le=4096 * 1024)
    cuda_version: str | None = Field(default=None, max_length=16)
    cuda_cores: Annotated[int, Field(ge=0, le=10_000_000), JSON_INTEGER] | None = None
    compute_capability: str | None = Field(default=None, max_length=16)
    price_per_hour: PriceIn | None = None
    models: list[ModelName] = Field(default_factory=list, max_length=64)

    @field_validator("cuda_version", "compute_capability", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    def spec(self, slot: str) -> dict[str, Any]:
        memory = self.memory_gb if self.memory_gb is not None else (self.memory_mb or 0) / 1024
        return {
            "slot": slot,
            "model": (self.model or self.name or "GPU").strip() or "GPU",
            "memory_gb": round(memory),
            "cuda_version": self.cuda_version,
            "cuda_cores": self.cuda_cores,
            "compute_capability": self.compute_capability,
            "price_per_hour": self.price_per_hour,
            "ai_models": self.models,
        }


def gpus_in(capabilities: dict[str, Any]) -> list[dict[str, Any]]:
    """The GPUs in a daemon's capabilities: ``{"gpu": {...}}``, ``{"gpus": [...]}``, or
    none (a CPU-only host registers and lists nothing). Specs have ``price_per_hour`` None
    when the daemon named none."""
    described: list[tuple[str, Any]] = []
    if isinstance(capabilities.get("gpus"), list):
        described += [(str(i), g) for i, g in enumerate(capabilities["gpus"])]
    elif "gpu" in capabilities:
        described.append(("0", capabilities["gpu"]))
    if len(described) > MAX_GPUS:
        raise InvalidFields(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "capabilities", "gpus"),
                    "msg": f"List should have at most {MAX_GPUS} items",
                    "input": None,
                }
            ]
        )
    specs = []
    for slot, raw in described:
        try:
            specs.append(FieldGpu.model_validate(raw).spec(slot))
        except ValidationError as exc:
            where = (
                ("body", "capabilities", "gpus", int(slot))
                if "gpus" in capabilities
                else ("body", "capabilities", "gpu")
            )
            raise InvalidFields(
                [{**e, "loc": (*where, *e["loc"])} for e in exc.errors(include_url=False)]
            ) from exc
    return specs


def status_of(word: str) -> MinerStatus:
    """Our status for a heartbeat's status word: anything not saying otherwise is online
    ("active", "ONLINE", "busy", "idle"...)."""
    return _STATUS_WORDS.get(word.strip().lower(), "online")


def host_health(body: MinerHeartbeat) -> dict[str, Any]:
    """A daemon's whole-host figures as a GPU's health (ours are per GPU, in ``gpus``)."""
    health: dict[str, Any] = {}
    if body.gpu_utilization is not None:
        health["utilization_pct"] = body.gpu_utilization
    if body.memory_used is not None:
        health["memory_used_gb"] = round(body.memory_used / 1024, 3)
    if body.memory_total is not None:
        health["memory_total_gb"] = round(body.memory_total / 1024, 3)
    temperature = body.temperature
    if temperature is None and body.metadata:
        found = body.metadata.get("temperature", body.metadata.get("gpu_temperature"))
        if isinstance(found, int | float) and -50 <= found <= 200:
            temperature = float(found)
    if temperature is not None:
        health["temperature_c"] = temperature
    return health


def describe(spec: MinerGpuSpec) -> GpuDescription:
    return built(GpuDescription, spec, price=spec.price_per_hour, ai_models=list(spec.ai_models))


def daemon_gpus(capabilities: dict[str, Any]) -> list[GpuDescription]:
    """The GPUs a daemon's capabilities describe, unpriced."""
    return [describe(DaemonGpuSpec.model_validate(spec)) for spec in gpus_in(capabilities)]


def registration(body: MinerRegister) -> Registration:
    """Our registration (priced ``gpus``) or a daemon's (GPUs in its capabilities)."""
    gpus = [describe(g) for g in body.gpus] if body.gpus else daemon_gpus(body.capabilities)
    return Registration(body.region, body.concurrency, body.capabilities, gpus)


def beat(body: MinerHeartbeat) -> Beat:
    """A heartbeat in our words: per-GPU health as sent, or the host's figures."""
    inflight = body.inflight if body.inflight is not None else body.current_jobs
    per_gpu = [(g.slot, g.model_dump(exclude={"slot"}, exclude_none=True)) for g in body.gpus]
    return Beat(status_of(body.status), inflight or 0, per_gpu, host_health(body))
