"""Trying a booking on behalf of a bid or a job, without spoiling the surrounding work."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from aitbc.errors import AppError, PaymentRequired

T = TypeVar("T")


class OutOfFunds(Exception):
    """The client cannot pay; trying other GPUs is pointless."""


def attempt(session: Session, action: Callable[[], T]) -> T | None:
    """Run ``action`` in a savepoint: its refusal (GPU just taken, window overlaps) rolls
    back only its own writes and yields None; a refusal for lack of funds raises
    ``OutOfFunds``."""
    try:
        with session.begin_nested():
            return action()
    except PaymentRequired as exc:
        raise OutOfFunds(exc.detail) from exc
    except AppError:
        return None
