"""Rendering results as a table (default), JSON or YAML."""

from __future__ import annotations

import json
from typing import Any

import click
import yaml


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no results)"
    columns = list(rows[0].keys())
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )
    return "\n".join(lines)


def render(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return _table(data)
    if isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in data.items())
    return _cell(data)


def emit(data: Any) -> None:
    ctx = click.get_current_context()
    click.echo(render(data, ctx.find_root().obj.output))
