"""Where a webhook may post. A webhook makes the coordinator send requests to an address a
user chose; left open, that lets any user reach what only the coordinator can (its own
admin endpoints on localhost, a cloud's metadata service at 169.254.169.254, databases and
dashboards on the private network). So a URL must be http(s) and every address its host
resolves to must be a public one, checked when the webhook is made and again before each
delivery (the name may resolve elsewhere later), unless the operator allows private
addresses (``AITBC_WEBHOOK_ALLOW_PRIVATE``: a closed network, tests). A delivery goes to
an address the check passed, not to a second look-up's answer (``pinned``): a name that
answers a public address to the check and a private one right after reaches nothing."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

from aitbc.errors import Invalid

MAX_URL = 2048


class TargetRefused(Invalid):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="webhook_url_not_allowed")


def parse(url: str) -> tuple[str, int]:
    """The URL's host and port, or ``TargetRefused``."""
    if len(url) > MAX_URL:
        raise TargetRefused(f"A webhook URL is at most {MAX_URL} characters.")
    if any(c <= " " or c == "\x7f" for c in url):
        raise TargetRefused("A webhook URL has no spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
        if host:
            host.encode("idna")  # every label 1 to 63 characters
            httpx.URL(url)  # what the delivery sends must parse there too
    except (ValueError, httpx.InvalidURL) as exc:  # UnicodeError is a ValueError
        raise TargetRefused(f"Not a URL: {exc}.") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise TargetRefused("A webhook URL is http:// or https:// with a host name.")
    if parts.username or parts.password:
        raise TargetRefused("A webhook URL carries no user name or password.")
    return host, port or (443 if parts.scheme == "https" else 80)


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local or not all(_public(str(v4)) for v4 in _embedded(ip)):
            return False
        if ip.ipv4_mapped is not None:
            return True  # the IPv4 address it stands for is public
    return ip.is_global and not ip.is_multicast


def _embedded(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, which a gateway or the host's own stack
    may reach in its place: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), translated
    (::ffff:0:a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16)."""
    value, low = int(ip), ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    found = [v4 for v4 in (ip.ipv4_mapped, ip.sixtofour) if v4 is not None]
    if value >> 32 in (0, 0xFFFF0000) or any(ip in net for net in _NAT64):
        found.append(low)
    return found


async def check(url: str, *, allow_private: bool, own: Iterable[tuple[str, int]] = ()) -> list[str]:
    """Refuse a URL that is not a public http(s) address, or names this coordinator (one
    of ``own``: host and port). The addresses its host resolved to, all public (none
    looked up when private addresses are allowed)."""
    host, port = parse(url)
    if (host.lower(), port) in {(h.lower(), p) for h, p in own}:
        raise TargetRefused("A webhook cannot post to the coordinator itself.")
    if allow_private:
        return []
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"The host {host!r} does not resolve ({exc}).") from exc
    addresses = sorted({str(info[4][0]) for info in found})
    private = [a for a in addresses if not _public(a)]
    if private:
        raise TargetRefused(
            f"{host!r} resolves to {', '.join(private)}: not a public address. Webhooks post "
            "only to public addresses unless the operator sets AITBC_WEBHOOK_ALLOW_PRIVATE."
        )
    return addresses


def pinned(url: str, addresses: list[str]) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL to post to, with its extra headers and request extensions: on the first
    of ``addresses`` that the check passed, the host name kept for the Host header and,
    over https, for TLS (the name sent and the certificate checked against)."""
    if not addresses:
        return url, {}, {}
    parsed = httpx.URL(url)
    host = parsed.host
    if _is_address(host):  # the URL names its address itself
        return url, {}, {}
    header = host if parsed.port is None else f"{host}:{parsed.port}"
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return str(parsed.copy_with(host=addresses[0])), {"Host": header}, extensions


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
