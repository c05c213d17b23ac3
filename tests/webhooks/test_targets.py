"""Webhook URLs that would let a user reach what only the coordinator can are refused: by
default every address a host resolves to must be public."""

from __future__ import annotations

import asyncio

import pytest

from aitbc.webhooks.targets import TargetRefused, check
from tests.support.api import Api
from tests.support.market import Market

REFUSED = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://172.16.5.5/hook",
    "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::127.0.0.1]/hook",  # IPv4-compatible
    "http://[::ffff:0:7f00:1]/hook",  # translated (SIIT)
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of the metadata service
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://[fec0::1]/hook",  # site-local
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "ftp://93.184.216.34/hook",
    "file:///etc/passwd",
    "http://user:secret@93.184.216.34/hook",
    "not a url",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_malformed_urls_are_refused_through_the_api(
    api: Api, market: Market, url: str
) -> None:
    answer = api.call("POST", "/v1/webhooks", market.client("c1"), json={"url": url})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "webhook_url_not_allowed"


def test_a_public_address_is_accepted(api: Api, market: Market) -> None:
    answer = api.call(
        "POST", "/v1/webhooks", market.client("c1"), json={"url": "https://93.184.216.34/h"}
    )
    assert answer.status_code == 201, answer.text


def test_the_coordinator_itself_is_refused_even_when_private_is_allowed() -> None:
    own = [("coordinator.example", 8080)]
    with pytest.raises(TargetRefused):
        asyncio.run(check("http://Coordinator.example:8080/x", allow_private=True, own=own))
    # Another port of the same host is another service.
    asyncio.run(check("http://coordinator.example:9000/x", allow_private=True, own=own))
