"""upstream/mjproxy.py: codes become the core's kinds, task JSON becomes a snapshot, and a lost
answer is told apart from a request that never left."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web

from mjgate.errors import Kind
from mjgate.models import Channel
from mjgate.upstream.mjproxy import MidjourneyProxyUpstream, answer_of, snapshot_of
from mjgate.upstream.port import UpstreamUnavailable


def test_submit_codes_in_the_cores_terms():
    assert answer_of({"code": 1, "result": "123"}, follow_up=False).upstream_id == "123"
    queued = answer_of({"code": 22, "result": 9, "properties": {"numberOfQueues": 4}}, follow_up=False)
    assert queued.accepted and queued.queue_position == 4 and queued.upstream_id == "9"
    assert answer_of({"code": 21, "result": "5"}, follow_up=True).needs_modal
    for code, kind, retry in ((4, Kind.INVALID, False), (24, Kind.BANNED, False), (23, Kind.QUEUE_FULL, True),
                              (9, Kind.UNAVAILABLE, True), (3, Kind.NO_CHANNEL, True), (77, Kind.UNAVAILABLE, False)):
        answer = answer_of({"code": code, "description": "x"}, follow_up=False)
        assert (answer.accepted, answer.refusal, answer.retryable) == (False, kind, retry)
    assert not answer_of({"code": 23}, follow_up=True).retryable  # a follow-up has no other channel
    with pytest.raises(UpstreamUnavailable):
        answer_of({"code": "one"}, follow_up=False)


def test_snapshot_keeps_only_what_the_upstream_said():
    assert snapshot_of({"status": "SUCCESS"}) is None  # no id: not a task
    snap = snapshot_of({"id": 42, "status": "IN_PROGRESS", "progress": "50%", "imageUrl": "http://i/x.png",
                        "videoUrls": [{"url": "v1"}, "v2"], "buttons": [{"customId": "a"}, {"label": "no id"}],
                        "startTime": 0, "finishTime": 7, "status2": "ignored"})
    assert snap == {"id": "42", "status": "IN_PROGRESS", "progress": "50%", "image_url": "http://i/x.png",
                    "video_urls": ["v1", "v2"], "buttons": [{"customId": "a"}], "finish_time": 7}
    assert "status" not in snapshot_of({"id": "1", "status": "DANCING"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_never_connected_is_not_a_lost_answer_but_a_timeout_after_sending_is():
    async with aiohttp.ClientSession() as http:
        upstream = MidjourneyProxyUpstream(http, submit_timeout_s=0.3)
        closed = Channel(id=1, base_url=f"http://127.0.0.1:{_free_port()}", secret="s")
        with pytest.raises(UpstreamUnavailable) as refused:
            await upstream.submit(closed, "imagine", {"prompt": "x"}, mode=None, parent_upstream_id=None,
                                  notify_url=None)
        assert refused.value.maybe_taken is False

        received = asyncio.Event()

        async def slow(request: web.Request) -> web.Response:
            received.set()
            await asyncio.sleep(2)
            return web.json_response({"code": 1, "result": "late"})

        app = web.Application()
        app.router.add_post("/mj/submit/imagine", slow)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = site._server.sockets[0].getsockname()[1]
            with pytest.raises(UpstreamUnavailable) as lost:
                await upstream.submit(Channel(id=2, base_url=f"http://127.0.0.1:{port}", secret="s"), "imagine",
                                      {"prompt": "x"}, mode=None, parent_upstream_id=None, notify_url=None)
            assert lost.value.maybe_taken is True and received.is_set()
        finally:
            await runner.cleanup()
