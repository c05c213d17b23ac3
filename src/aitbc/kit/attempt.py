"""Trying a booking on behalf of a bid or a job, without spoiling the surrounding work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aitbc.errors import AppError, PaymentRequired
from aitbc.store.conn import Conn

T = TypeVar("T")


class OutOfFunds(Exception):
    """The client cannot pay; trying other GPUs is pointless."""


async def attempt(conn: Conn, action: Callable[[], Awaitable[T]]) -> T | None:
    """Run ``action`` in a savepoint: its refusal (GPU just taken, window overlaps) rolls
    back only its own writes and yields None; a refusal for lack of funds raises
    ``OutOfFunds``."""
    try:
        return await conn.attempt(action)
    except PaymentRequired as exc:
        raise OutOfFunds(exc.detail) from exc
    except AppError:
        return None
