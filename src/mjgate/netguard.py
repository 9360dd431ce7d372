"""Outbound requests to addresses chosen by clients (describe image URLs, webhook URLs) may only
reach public addresses: no loopback, private networks, link-local or metadata endpoints (SSRF)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Only globally routable unicast addresses: no loopback, private, link-local, CGNAT, reserved."""
    return address.is_global and not address.is_multicast


class PublicOnlyResolver(aiohttp.abc.AbstractResolver):
    """Resolves like the default resolver, then drops every non-public address.

    aiohttp connects to what the resolver returns, so a name that resolves to a public address at
    the first check and to a private one at connect time (DNS rebinding) still cannot reach it.
    """

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        results = await self._inner.resolve(host, port, family)
        public = [r for r in results if is_public_address(ipaddress.ip_address(r["host"]))]
        if not public:
            raise OSError(f"{host} does not resolve to a public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


def public_only_session(**kwargs) -> aiohttp.ClientSession:
    """A session whose every connection is checked at connect time (so DNS rebinding cannot slip past)."""
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(), use_dns_cache=False, limit=100)
    return aiohttp.ClientSession(connector=connector, **kwargs)


def refuse_private_literal(url: str) -> None:
    """aiohttp does not consult the resolver for IP literals, so those are checked here."""
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not is_public_address(address):
        raise OSError(f"{host} is not a public address")
