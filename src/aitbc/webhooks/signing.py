"""The signature a webhook delivery carries: HMAC-SHA256 with the webhook's secret over
``<unix time>.<body>``, sent as ``X-Aitbc-Signature: t=<unix time>,v1=<hex digest>``. The
time in the signed text lets a receiver refuse an old delivery replayed."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Aitbc-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (docs/events.md has the same in ten lines)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    fresh = abs(now - timestamp) <= tolerance
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))
