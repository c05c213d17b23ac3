"""The reviews' tests share one GPU to review."""

from __future__ import annotations

import pytest

from tests.support.market import Market


@pytest.fixture
def gpu(market: Market) -> str:
    return market.gpu(name="RTX 4090", price_per_hour="0.5")
