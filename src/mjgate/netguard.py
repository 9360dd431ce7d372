"""Outbound requests to addresses chosen by clients (describe image URLs, webhook URLs) may only
reach public addresses: no loopback, private networks, link-local or metadata endpoints (SSRF)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Only globally routable unicast addresses: no loopback, private, link-local, CGNAT, reserved."""
    return address.is_global and not address.is_multicast


class PrivateTarget(OSError):
    """A client-chosen URL names a loopback, private or otherwise non-public address."""


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
            raise PrivateTarget(f"{host} does not resolve to a public address")
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
        raise PrivateTarget(f"{host} is not a public address")


def is_private_target(exc: BaseException) -> bool:
    """Whether a failed request failed because its target is not public (aiohttp wraps the resolver's error)."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, PrivateTarget) or isinstance(getattr(exc, "os_error", None), PrivateTarget):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


RESOLVE_TIMEOUT_S = 2.0


async def private_target_problem(url: str) -> str | None:
    """Why `url` cannot receive callbacks from this gateway (its host is loopback or private), or None.

    Checked when a client submits, so a callback that could never be delivered is refused with a
    clear error instead of being dropped later. A name that does not resolve (now) is let through:
    the delivery checks again at connect time, which is also what stops DNS rebinding.
    """
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host:
        return "it has no host"
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is a loopback name"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return None if is_public_address(address) else f"{host} is not a public address"
    try:
        infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, None), RESOLVE_TIMEOUT_S)
    except (OSError, asyncio.TimeoutError, UnicodeError):
        return None
    addresses = {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}
    if addresses and not any(is_public_address(a) for a in addresses):
        return f"{host} resolves only to non-public addresses"
    return None
