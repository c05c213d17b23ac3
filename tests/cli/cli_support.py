"""What the CLI tests of the new commands share: the CLI run against the live server with no
config file or environment settings of the machine, and the two ways a run ends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from aitbc.cli import config as cli_config
from aitbc.cli.main import cli


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ~/.aitbc/config.yaml and no AITBC_* variables; returns the config path used."""
    path = tmp_path / "home" / ".aitbc" / "config.yaml"
    monkeypatch.setattr(cli_config, "DEFAULT_CONFIG_FILE", path)
    for name in ("AITBC_URL", "AITBC_API_KEY", "FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    return path


class Cli:
    """``aitbc --url <live server> [--api-key KEY] ARGS...``; the output format is left to
    the arguments."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, key: str | None, *args: str, stdin: str | None = None) -> Result:
        flags = ["--url", self.url] + (["--api-key", key] if key is not None else [])
        return CliRunner().invoke(cli, [*flags, *args], input=stdin)

    def json(self, key: str | None, *args: str) -> Any:
        return ok_json(self(key, *args, "-o", "json"))


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def ok_text(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def usage_error(result: Result, *fragments: str) -> str:
    """Exit 2 with click's usage error (no traceback) naming each fragment."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output and "Error:" in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    return result.output


def api_error(result: Result, code: str, status: int) -> str:
    assert result.exit_code == 1, (result.output, result.exception)
    assert code in result.output and f"HTTP {status}" in result.output, result.output
    return result.output
