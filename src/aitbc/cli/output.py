"""Rendering results: JSON or YAML as the server sent them, or tables drawn with rich (colour
and terminal-fitting widths on a terminal, plain aligned text when stdout is not one)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from typing import Any

import click
import yaml
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from aitbc.cli.views import View

PLAIN_WIDTH = 100_000  # never wrap a plain row: scripts read one row per line

STATUS_STYLES = {
    "available": "green",
    "active": "green",
    "online": "green",
    "open": "green",
    "completed": "green",
    "succeeded": "green",
    "booked": "yellow",
    "pending": "yellow",
    "queued": "yellow",
    "assigned": "yellow",
    "running": "yellow",
    "reserved": "cyan",
    "draining": "yellow",
    "offline": "red",
    "failed": "red",
    "interrupted": "red",
    "expired": "dim",
    "cancelled": "dim",
    "released": "dim",
    "closed": "dim",
    "delisted": "dim",
}
ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")


def cell_text(value: Any) -> str:
    """One value as table text: no JSON, times without fractions, lists joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        match = ISO_TIME.match(value)
        if match is None:
            return value
        date, time, zone = match.groups()
        return f"{date} {time}{'Z' if zone in ('Z', '+00:00') else zone}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_nested_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return ", ".join(cell_text(v) for v in value)
        return f"{len(value)} items"
    return str(value)


def _nested_text(value: Any) -> str:
    text = cell_text(value)
    return f"({text})" if isinstance(value, dict) else text


def _styled(key: str, value: Any, styled: bool) -> Text:
    text = cell_text(value)
    if styled and key in ("status", "state", "gpu_status") and isinstance(value, str):
        return Text(text, style=STATUS_STYLES.get(value, ""))
    return Text(text)


def _plain(columns: list[str], cells: list[list[str]]) -> Text:
    """A plain table for scripts and pipes: a header, a rule of dashes exactly under each
    heading's column, one row a line, columns two spaces apart."""
    cells = [[value.replace("\n", " ") for value in row] for row in cells]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return Text("\n".join([line(columns), rule, *(line(row) for row in cells)]))


def _styled_text(key: str, value: Any, text: str) -> Text:
    if key in ("status", "state", "gpu_status") and isinstance(value, str):
        return Text(text, style=STATUS_STYLES.get(value, ""))
    return Text(text)


def _terminal_table() -> Table:
    return Table(
        box=box.SIMPLE_HEAD,
        header_style="bold cyan",
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )


def _all_keys(rows: Iterable[dict[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return list(keys)


def _check_known(requested: list[str], available: list[str]) -> None:
    unknown = [c for c in requested if c not in available]
    if unknown and available:
        raise click.UsageError(
            f"unknown column {', '.join(unknown)}; choose from: {', '.join(available)} (or all)"
        )


def chosen_columns(
    rows: list[dict[str, Any]], view: View | None, requested: list[str] | None
) -> list[str]:
    available = _all_keys(rows)
    if requested == ["all"]:
        return available
    if requested:
        _check_known(requested, available)
        return requested
    if view is not None and view.columns:
        return [c for c in view.columns if c in available]
    return available


# Free text, which may wrap at its spaces; every other column keeps each value on one line.
PROSE = frozenset(
    {"comment", "description", "note", "reason", "error", "flag_reasons", "notes", "wanted"}
)
PROSE_WIDTH = 24  # what a prose column is given before others are left out
GAP = 2  # between columns


def _compact_time(text: str) -> str:
    """A terminal table's time: to the minute ("2030-01-01 04:43Z")."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d \d\d:\d\d):\d\d(Z|[+-]\d\d:\d\d)", text)
    return text if match is None else f"{match.group(1)}{match.group(2)}"


def fitted(columns: list[str], cells: list[list[str]], width: int) -> list[str]:
    """The columns a terminal ``width`` holds without breaking a value: the first ones in
    their order (the view lists them by priority), each as wide as its widest value (a prose
    column at most PROSE_WIDTH); at least the first."""
    kept: list[str] = []
    used = 0
    for i, name in enumerate(columns):
        natural = max([len(name), *(len(row[i]) for row in cells)])
        if name in PROSE:
            natural = min(natural, PROSE_WIDTH)
        needed = natural + (GAP if kept else 0)
        if kept and used + needed > width:
            break
        kept.append(name)
        used += needed
    return kept


def table(
    rows: list[dict[str, Any]],
    view: View | None,
    requested: list[str] | None,
    styled: bool,
) -> RenderableType:
    """Rows as a table. On a terminal (``styled``) it fits the terminal's width: times to the
    minute, and the lowest-priority columns left out (unless --columns named them) rather
    than a word or a number broken across lines."""
    if not rows:
        return Text("(no results)")
    columns = chosen_columns(rows, view, requested)
    if not styled:
        return _plain(columns, [[cell_text(row.get(c)) for c in columns] for row in rows])
    cells = [[_compact_time(cell_text(row.get(c))) for c in columns] for row in rows]
    if not requested:
        kept = fitted(columns, cells, console().width)
        at = [columns.index(c) for c in kept]
        columns, cells = kept, [[row[i] for i in at] for row in cells]
    grid = _terminal_table()
    for name in columns:
        wraps = name in PROSE
        grid.add_column(name, no_wrap=not wraps, overflow="fold" if wraps else "ellipsis")
    for n, row in enumerate(rows):
        grid.add_row(*(_styled_text(c, row.get(c), cells[n][i]) for i, c in enumerate(columns)))
    return grid


def _flatten(prefix: str, value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _flatten(f"{prefix}.{key}", inner)
    else:
        yield prefix, value


def _is_row_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def record(
    obj: dict[str, Any], view: View | None, requested: list[str] | None, styled: bool
) -> RenderableType:
    """One object: a field / value line per field (nested objects as dotted names), then any
    list of objects it holds as a table of its own. For a wrapper of rows (the view's
    ``rows_key``) the columns asked for are the rows' columns."""
    rows_key = view.rows_key if view is not None else None
    keys = list(obj)
    if requested and requested != ["all"] and rows_key is None:
        _check_known(requested, keys)
        keys = requested
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold" if styled else "")
    lines.add_column(overflow="fold")
    parts: list[RenderableType] = [lines]
    for key in keys:
        value = obj[key]
        if _is_row_list(value):
            nested = view.nested.get(key) if view is not None else None
            parts += [Text(""), Text(f"{key}:", style="bold" if styled else "")]
            parts.append(table(value, nested, requested if key == rows_key else None, styled))
            continue
        for name, inner in _flatten(key, value):
            lines.add_row(name, _styled(name, inner, styled))
    return Group(*parts)


def renderable(
    data: Any, view: View | None, requested: list[str] | None, styled: bool
) -> RenderableType:
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return table(data, view, requested, styled)
    if isinstance(data, dict):
        return record(data, view, requested, styled)
    return Text(cell_text(data))


def console(stderr: bool = False) -> Console:
    return Console(highlight=False, stderr=stderr)


def plain_text(item: RenderableType) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=PLAIN_WIDTH, no_color=True, highlight=False).print(item)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def show(item: RenderableType) -> None:
    """On a terminal: rich, in colour, fitted to its width; otherwise plain text."""
    out = console()
    if out.is_terminal:
        out.print(item)
    else:
        click.echo(plain_text(item))


def ids(data: Any, view: View | None) -> list[str]:
    """The identifiers ``--quiet`` prints: one per row, or the one of a single result."""
    if isinstance(data, dict) and view is not None and view.rows_key in data:
        rows_key = view.rows_key or ""
        return ids(data[rows_key], view.nested.get(rows_key))
    rows = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    found = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        key = view.id_key if view is not None and view.id_key in row else _guess_id(row)
        if key is not None:
            found.append(cell_text(row[key]) if key in ("at", "period_start") else str(row[key]))
    return found


def _guess_id(row: dict[str, Any]) -> str | None:
    return next((k for k in row if k == "id" or k.endswith("_id")), None)


def render_data(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()


def emit(data: Any, view: View | None = None, *, shown: Any = None) -> None:
    """Print ``data`` as the output options say; ``shown``, when given, is what a table
    shows instead (the same figures in people's words), JSON and YAML keeping ``data``."""
    state = click.get_current_context().find_root().obj
    if state.quiet:
        for identifier in ids(data, view):
            click.echo(identifier)
        return
    if state.output in ("json", "yaml"):
        click.echo(render_data(data, state.output))
        return
    styled = console().is_terminal
    show(renderable(data if shown is None else shown, view, state.column_list(), styled))
