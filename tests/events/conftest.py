from __future__ import annotations

from collections.abc import Iterator

import pytest

from aitbc.config import Settings
from tests.support.receiver import Receiver, receiving


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receivers of these tests listen on 127.0.0.1."""
    return settings.model_copy(update={"webhook_allow_private": True})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running
