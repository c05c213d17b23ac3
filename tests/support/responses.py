"""Assertions on answers: a success with its body, or an error in the one error shape."""

from __future__ import annotations

from typing import Any


def ok(response: Any, status: int = 200) -> Any:
    """The response has this status; its JSON body."""
    assert response.status_code == status, response.text
    return response.json()


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, str]:
    """The response is an error with exactly ``{"error", "detail"}``, both non-empty strings,
    with this status (and machine code, when given)."""
    assert response.status_code == status, (status, code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    if code is not None:
        assert body["error"] == code, body
    return body
