"""Where a webhook may post. A webhook makes the coordinator send requests to an address a
user chose; left open, that lets any user reach what only the coordinator can (its own
admin endpoints on localhost, a cloud's metadata service at 169.254.169.254, databases and
dashboards on the private network). So a URL must be http(s) and every address its host
resolves to must be a public one, checked when the webhook is made and again before each
delivery (the name may resolve elsewhere later), unless the operator allows private
addresses (``AITBC_WEBHOOK_ALLOW_PRIVATE``: a closed network, tests)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from aitbc.errors import Invalid

MAX_URL = 2048


class TargetRefused(Invalid):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="webhook_url_not_allowed")


def parse(url: str) -> tuple[str, int]:
    """The URL's host and port, or ``TargetRefused``."""
    if len(url) > MAX_URL:
        raise TargetRefused(f"A webhook URL is at most {MAX_URL} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"Not a URL: {exc}.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("A webhook URL is http:// or https:// with a host name.")
    if parts.username or parts.password:
        raise TargetRefused("A webhook URL carries no user name or password.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check(url: str, *, allow_private: bool, own: Iterable[tuple[str, int]] = ()) -> None:
    """Refuse a URL that is not a public http(s) address, or names this coordinator (one
    of ``own``: host and port)."""
    host, port = parse(url)
    if (host.lower(), port) in {(h.lower(), p) for h, p in own}:
        raise TargetRefused("A webhook cannot post to the coordinator itself.")
    if allow_private:
        return
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"The host {host!r} does not resolve ({exc}).") from exc
    addresses = {str(info[4][0]) for info in found}
    private = sorted(a for a in addresses if not _public(a))
    if private:
        raise TargetRefused(
            f"{host!r} resolves to {', '.join(private)}: not a public address. Webhooks post "
            "only to public addresses unless the operator sets AITBC_WEBHOOK_ALLOW_PRIVATE."
        )
