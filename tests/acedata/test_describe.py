"""POST /midjourney/describe: base64 and data: URIs, and http(s) downloads that cannot reach private hosts."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from aiohttp import web
from PIL import Image

from mjgate import downloads
from mjgate.dialects.acedata.render import descriptions_of
from tests.acedata.conftest import PNG_B64, PNG_DATA_URI

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def png_bytes(size: int = 32, color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, "PNG")
    return buffer.getvalue()


def upstream_describes(sim) -> list[dict]:
    return [r for r in sim.requests() if r["path"].endswith("/submit/describe")]


def check_descriptions(answer: dict) -> None:
    assert answer["success"] is True and answer["progress"] == 100
    descriptions = answer["descriptions"]
    assert len(descriptions) == 4 and all(isinstance(d, str) and d for d in descriptions)
    for text in descriptions:
        assert not text[0].isdigit() and "\u20e3" not in text and "\n" not in text, text
        assert text.endswith("--ar 1:1")


@sqlite_only
async def test_describe_data_uri_and_base64(ace, simulator_session):
    answer = await ace.ok("/midjourney/describe", {"image_url": PNG_DATA_URI})
    check_descriptions(answer)
    assert "image_id" not in answer and answer["task_id"]
    check_descriptions(await ace.ok("/midjourney/describe", {"image_base64": PNG_B64}))
    sent = upstream_describes(simulator_session)
    assert [s["json"]["base64"] for s in sent] == [PNG_DATA_URI, PNG_DATA_URI]
    task = await ace.retrieve(answer["task_id"])
    assert task["type"] == "describe" and task["response"]["descriptions"] == answer["descriptions"]
    assert "image_id" not in task and task["descriptions"] == answer["descriptions"]
    # The stored request keeps the shape of what was sent, not the image itself.
    fetched = (await ace.client.get(f"/mj/task/{answer['task_id']}/fetch", headers=ace.headers)).json()
    assert fetched["action"] == "DESCRIBE" and fetched["status"] == "SUCCESS"


@sqlite_only
async def test_describe_async(ace):
    answer = await ace.ok("/midjourney/describe", {"image_url": PNG_DATA_URI, "async": True})
    assert set(answer) == {"success", "task_id", "trace_id"}
    deadline = time.monotonic() + 20
    while "success" not in (task := await ace.retrieve(answer["task_id"]))["response"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    check_descriptions(task["response"])


@sqlite_only
@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/cat.png",
    "http://localhost:{port}/cat.png",
    "http://[::1]:{port}/cat.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/cat.png",
    "http://192.168.0.1/cat.png",
    "http://100.64.0.1/cat.png",
    "http://0.0.0.0:{port}/cat.png",
    "http://[::ffff:127.0.0.1]:{port}/cat.png",
    "ftp://example.com/cat.png",
    "file:///etc/passwd",
])
async def test_describe_refuses_private_and_odd_urls(ace, simulator_session, url):
    async with ImageServer() as server:
        resp = await ace.call("/midjourney/describe", {"image_url": url.format(port=server.port)})
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "bad_request"
        assert server.hits == []  # nothing was fetched
    assert upstream_describes(simulator_session) == []
    assert (await ace.relay.balances())["used"] == 0


class ImageServer:
    """An image host on 127.0.0.1 (made to count as public by the test that needs it)."""

    def __init__(self):
        self.hits: list[str] = []

    async def __aenter__(self):
        app = web.Application()

        async def handle(request: web.Request) -> web.StreamResponse:
            self.hits.append(request.path)
            if request.path == "/cat.png":
                return web.Response(body=png_bytes(), content_type="image/png")
            if request.path == "/hop":
                raise web.HTTPFound("/cat.png")
            if request.path == "/to-private":
                raise web.HTTPFound("http://10.0.0.7/cat.png")
            if request.path == "/huge.png":
                return web.Response(body=png_bytes() + b"\0" * (downloads.MAX_DOWNLOAD_BYTES + 1),
                                    content_type="image/png")
            if request.path == "/chunked":
                response = web.StreamResponse()
                response.enable_chunked_encoding()
                await response.prepare(request)
                for _ in range(downloads.MAX_DOWNLOAD_BYTES // 65536 + 2):
                    await response.write(b"\0" * 65536)
                return response
            if request.path == "/text":
                return web.Response(text="<html>not an image</html>", content_type="text/html")
            return web.Response(status=404)

        app.router.add_get("/{tail:.*}", handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


@pytest.fixture
def loopback_is_public(monkeypatch):
    """Let 127.0.0.1 (only) pass the public-address check, so the download path can be driven."""
    from mjgate import netguard

    real = netguard.is_public_address
    allow = lambda a: str(a) == "127.0.0.1" or real(a)  # noqa: E731
    monkeypatch.setattr(netguard, "is_public_address", allow)  # the connect-time resolver
    monkeypatch.setattr(downloads, "is_public_address", allow)  # the up-front check


@sqlite_only
async def test_describe_downloads_a_public_image(ace, simulator_session, loopback_is_public):
    async with ImageServer() as server:
        answer = await ace.ok("/midjourney/describe", {"image_url": f"http://127.0.0.1:{server.port}/hop"})
        check_descriptions(answer)
        assert server.hits == ["/hop", "/cat.png"]
    sent = upstream_describes(simulator_session)[0]["json"]["base64"]
    assert sent.startswith("data:image/png;base64,")
    import base64
    assert base64.b64decode(sent.split(",", 1)[1]) == png_bytes()


@sqlite_only
@pytest.mark.parametrize("path, message", [
    ("/to-private", "not a public address"),
    ("/huge.png", "larger than 10 MB"),
    ("/chunked", "larger than 10 MB"),
    ("/text", "not a PNG"),
    ("/missing", "HTTP 404"),
])
async def test_describe_download_limits(ace, simulator_session, loopback_is_public, path, message):
    async with ImageServer() as server:
        resp = await ace.call("/midjourney/describe", {"image_url": f"http://127.0.0.1:{server.port}{path}"})
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]["message"]
    assert upstream_describes(simulator_session) == []


@sqlite_only
async def test_describe_needs_an_image(ace):
    for body in ({}, {"image_url": ""}, {"image_base64": "not base64!"}, {"image_url": "data:text/plain;base64,aGk="}):
        resp = await ace.call("/midjourney/describe", body)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_request", (body, resp.text)


def test_descriptions_parsing():
    from types import SimpleNamespace

    text = "1️⃣ a fox --ar 1:1\n\n2️⃣ a cat, oil painting\n\n3️⃣ a boat\n\n4️⃣ a tram --v 6"
    task = SimpleNamespace(prompt=text, properties={})
    assert descriptions_of(task) == ["a fox --ar 1:1", "a cat, oil painting", "a boat", "a tram --v 6"]
    task = SimpleNamespace(prompt="", properties={"finalPrompt": "1. one\n2. two\n3. three\n4. four\n5. five"})
    assert descriptions_of(task) == ["one", "two", "three", "four"]
