"""The server's logs: where it listens, each request (method, path, status, time taken), when
it stops; as text lines or as one JSON object per line (for a log collector). Requests are
logged at INFO by ``aitbc.access``: ``--log-level warning`` leaves them out (the benchmarks
do, so their figures carry no logging cost)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

ACCESS = logging.getLogger("aitbc.access")
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def config(level: str, fmt: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server and uvicorn (each worker applies it)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}
    loud = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "loggers": {
            "aitbc": {"handlers": ["main"], "level": loud, "propagate": False},
            # The server's start and stop lines: said at INFO, shown at every level.
            "aitbc.server": {"handlers": ["main"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["main"], "level": loud, "propagate": False},
            "uvicorn.error": {"level": loud},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def request_done(method: str, path: str, status: int, seconds: float) -> None:
    if ACCESS.isEnabledFor(logging.INFO):
        milliseconds = round(seconds * 1000, 1)
        ACCESS.info(
            "%s %s %d %.1f ms",
            method,
            path,
            status,
            milliseconds,
            extra={"method": method, "path": path, "status": status, "duration_ms": milliseconds},
        )
