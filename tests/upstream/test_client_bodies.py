"""The midjourney-proxy upstream reads whole answers, however the upstream's bytes arrive."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web

from mjgate.models import Channel
from mjgate.upstream.mjproxy import MAX_UPSTREAM_BODY, MidjourneyProxyUpstream
from mjgate.upstream.port import UpstreamUnavailable


async def _serve(handler):
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


def _channel(base_url: str) -> Channel:
    return Channel(id=1, base_url=base_url, secret="s")


def _dribbling(body: bytes, piece: int = 16_384, pause_s: float = 0.005):
    """An upstream that sends its answer in pieces with pauses, like a loaded server does."""
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(body)
        await resp.prepare(request)
        for start in range(0, len(body), piece):
            await resp.write(body[start:start + piece])
            await asyncio.sleep(pause_s)
        await resp.write_eof()
        return resp
    return handler


async def test_list_by_condition_answer_arriving_in_pieces_is_read_whole():
    tasks = [{"id": f"{i:016d}", "status": "SUCCESS", "progress": "100%", "description": "x" * 1_700}
             for i in range(100)]
    body = json.dumps(tasks).encode()
    assert len(body) > 170_000
    runner, base = await _serve(_dribbling(body))
    try:
        async with aiohttp.ClientSession() as http:
            found = await MidjourneyProxyUpstream(http).list(_channel(base), [t["id"] for t in tasks])
    finally:
        await runner.cleanup()
    assert [t["id"] for t in found] == [t["id"] for t in tasks]


async def test_an_answer_over_the_limit_is_refused_not_truncated():
    body = b"[" + b" " * (MAX_UPSTREAM_BODY + 10) + b"]"
    runner, base = await _serve(_dribbling(body, piece=1 << 20, pause_s=0))
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(UpstreamUnavailable, match="larger than"):
                await MidjourneyProxyUpstream(http).list(_channel(base), ["1"])
    finally:
        await runner.cleanup()
