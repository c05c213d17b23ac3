"""The host's GPUs: read from ``nvidia-smi`` when it is there, else as configured."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

QUERY = "index,name,memory.total,utilization.gpu,memory.used,temperature.gpu"


@dataclass(frozen=True, slots=True)
class Reading:
    """One GPU as ``nvidia-smi`` sees it now."""

    slot: str
    name: str
    memory_total_mb: int
    utilization_pct: float | None
    memory_used_mb: int | None
    temperature_c: float | None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def parse_smi(output: str) -> list[Reading]:
    readings = []
    for line in output.strip().splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 6:
            continue
        index, name, total, utilization, used, temperature = parts
        used_mb = _number(used)
        readings.append(
            Reading(
                slot=index,
                name=name,
                memory_total_mb=int(_number(total) or 0),
                utilization_pct=_number(utilization),
                memory_used_mb=None if used_mb is None else int(used_mb),
                temperature_c=_number(temperature),
            )
        )
    return readings


def read_smi(command: str = "nvidia-smi") -> list[Reading] | None:
    """The GPUs now, or None when nvidia-smi is not installed or fails."""
    if shutil.which(command) is None:
        return None
    try:
        done = subprocess.run(
            [command, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_smi(done.stdout)


def register_specs(readings: list[Reading], *, price_per_hour: str) -> list[dict[str, Any]]:
    """The registration body's ``gpus`` for what nvidia-smi reported."""
    return [
        {
            "slot": r.slot,
            "model": r.name,
            "memory_gb": round(r.memory_total_mb / 1024),
            "price_per_hour": price_per_hour,
        }
        for r in readings
    ]


def health_reports(readings: list[Reading]) -> list[dict[str, Any]]:
    """The heartbeat's per-GPU ``gpus`` for what nvidia-smi reported."""
    reports = []
    for r in readings:
        report: dict[str, Any] = {"slot": r.slot}
        if r.utilization_pct is not None:
            report["utilization_pct"] = r.utilization_pct
        if r.memory_used_mb is not None:
            report["memory_used_gb"] = round(r.memory_used_mb / 1024, 3)
        if r.temperature_c is not None:
            report["temperature_c"] = r.temperature_c
        reports.append(report)
    return reports
