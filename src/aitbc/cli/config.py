"""CLI settings, lowest to highest priority: defaults, YAML file, environment, flags."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

DEFAULT_URL = "http://127.0.0.1:18000"
DEFAULT_CONFIG_FILE = Path.home() / ".aitbc" / "config.yaml"


@dataclass(frozen=True, slots=True)
class CliConfig:
    coordinator_url: str
    api_key: str


def _read_file(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise click.ClickException(f"config file {path} does not exist")
        return {}
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise click.ClickException(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise click.ClickException(f"config file {path} must hold a mapping")
    return loaded


def config_path(config_file: str | None) -> Path:
    return Path(config_file).expanduser() if config_file else DEFAULT_CONFIG_FILE


def save(path: Path, values: dict[str, str]) -> None:
    """Write ``values`` into the YAML file, keeping its other keys; only the owner can read it
    (it holds a key)."""
    current = _read_file(path, explicit=False)
    current.update(values)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(yaml.safe_dump(current, sort_keys=False))
    except OSError as exc:
        raise click.ClickException(f"cannot write config file {path}: {exc}") from exc


def load(*, url: str | None, api_key: str | None, config_file: str | None) -> CliConfig:
    path = config_path(config_file)
    values: dict[str, Any] = {"coordinator_url": DEFAULT_URL, "api_key": ""}
    values.update({k: v for k, v in _read_file(path, bool(config_file)).items() if v is not None})
    if os.environ.get("AITBC_URL"):
        values["coordinator_url"] = os.environ["AITBC_URL"]
    if "AITBC_API_KEY" in os.environ:
        values["api_key"] = os.environ["AITBC_API_KEY"]
    if url:
        values["coordinator_url"] = url
    if api_key is not None:
        values["api_key"] = api_key
    return CliConfig(
        coordinator_url=str(values["coordinator_url"]).rstrip("/"),
        api_key=str(values["api_key"] or ""),
    )
