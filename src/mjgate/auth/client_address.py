"""The client's address: the TCP peer, or — only when that peer is a trusted reverse proxy
(MJGATE_TRUSTED_PROXIES) — the address the proxies recorded in X-Forwarded-For.

X-Forwarded-For is read from the right: each trusted proxy appends the address it saw, so the first
address from the right that is not a trusted proxy is the client. Anything further left was written
by the client itself and is never believed.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_networks(spec: str) -> tuple[Network, ...]:
    """'10.0.0.0/8, 127.0.0.1, ::1' -> networks; a ValueError names the bad entry."""
    networks = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {entry!r}") from None
    return tuple(networks)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: HTTPConnection) -> str:
    peer = request.client.host if request.client else ""
    networks = parse_networks(request.app.state.settings.trusted_proxies)
    if not networks or not _trusted(peer, networks):
        return peer or "?"
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage where an address should be: fall back to the proxy itself
    return hops[0] if hops else peer
