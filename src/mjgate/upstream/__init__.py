"""Upstream kinds: each a module implementing upstream.port.Upstream; `for_channel` picks one."""

from __future__ import annotations

import aiohttp

from mjgate.upstream.mjproxy import MidjourneyProxyUpstream
from mjgate.upstream.port import NoSeed, Snapshot, SubmitAnswer, Upstream, UpstreamUnavailable

__all__ = ["MidjourneyProxyUpstream", "NoSeed", "Snapshot", "SubmitAnswer", "Upstream", "UpstreamUnavailable",
           "build_upstream"]


def build_upstream(http: aiohttp.ClientSession, *, submit_timeout_s: float | None = None) -> Upstream:
    """The upstream every channel speaks. One kind today; a channel `kind` column would choose here."""
    if submit_timeout_s is None:
        return MidjourneyProxyUpstream(http)
    return MidjourneyProxyUpstream(http, submit_timeout_s=submit_timeout_s)
