"""Images the gateway itself handed out are read internally (images/own.py) for describe, edits,
videos and image prompts; everything else keeps the public-address rule.

The test client calls the gateway as http://gateway.test, a host that does not resolve: an own
image URL that worked here cannot have gone over the network.
"""

from __future__ import annotations

import base64
import io
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from mjgate.images.signing import signed_image_path
from tests.acedata.conftest import app_with, make_ace



def upstream_calls(sim, fragment: str) -> list[dict]:
    return [r for r in sim.requests() if fragment in r["path"]]


def decoded(data_uri: str) -> bytes:
    return base64.b64decode(data_uri.split(",", 1)[1])


async def test_describe_of_an_earlier_tasks_own_image_url(ace, client, simulator_session):
    """On SQLite, PostgreSQL and MariaDB: the image the gateway serves is the image describe sends."""
    grid = await ace.generate("a lighthouse on a cliff")
    served = (await client.get(grid["image_url"])).content
    answer = await ace.ok("/midjourney/describe", {"image_url": grid["image_url"]})
    assert answer["success"] is True and len(answer["descriptions"]) == 4
    sent = upstream_calls(simulator_session, "/submit/describe")[-1]["json"]["base64"]
    assert sent.startswith("data:image/png;base64,") and decoded(sent) == served


async def test_own_urls_feed_edits_videos_image_prompts_and_split_parts(ace, client, simulator_session):
    grid = await ace.imagine({"prompt": "a red kite", "split_images": True})
    served = (await client.get(grid["image_url"])).content
    part = (await client.get(grid["image_urls"][2])).content

    await ace.ok("/midjourney/edits", {"image_url": grid["image_url"], "prompt": "make it blue"})
    assert decoded(upstream_calls(simulator_session, "/submit/edits")[-1]["json"]["image"]) == served

    await ace.ok("/midjourney/videos", {"prompt": "the kite flies", "image_url": grid["image_urls"][2],
                                        "end_image_url": grid["image_url"]})
    sent = upstream_calls(simulator_session, "/submit/video")[-1]["json"]
    assert decoded(sent["image"]) == part and decoded(sent["endImage"]) == served

    # Image prompts: our own URLs leave the prompt for base64Array; a foreign URL stays for the upstream.
    foreign = "https://cdn.example.com/ref.png"
    await ace.imagine({"prompt": f"{grid['image_url']} {foreign} a kite festival --ar 3:2"})
    sent = upstream_calls(simulator_session, "/submit/imagine")[-1]["json"]
    assert sent["prompt"] == f"{foreign} a kite festival --ar 3:2"
    assert [decoded(i) for i in sent["base64Array"]] == [served]

    # A part URL described: the quarter itself.
    await ace.ok("/midjourney/describe", {"image_url": grid["image_urls"][0]})
    described = decoded(upstream_calls(simulator_session, "/submit/describe")[-1]["json"]["base64"])
    assert Image.open(io.BytesIO(described)).size == Image.open(io.BytesIO(part)).size


async def test_only_validly_signed_urls_of_this_gateway_are_ours(ace, simulator_session):
    grid = await ace.generate("a quiet harbour")
    parts = urlsplit(grid["image_url"])
    mj_id = parts.path.rsplit("/", 1)[1]
    cases = {
        "forged signature": grid["image_url"].replace("sig=", "sig=x"),
        "another task's signature": f"http://gateway.test/mj/image/0000000000000000?{parts.query}",
        "another host": f"http://evil.test{parts.path}?{parts.query}",
        "another port": f"http://gateway.test:8080{parts.path}?{parts.query}",
        "a private host": f"http://127.0.0.1{parts.path}?{parts.query}",
        "another path": f"http://gateway.test/mj/image/{mj_id}/x?{parts.query}",
    }
    for case, url in cases.items():
        resp = await ace.call("/midjourney/describe", {"image_url": url})
        assert resp.status_code == 400, (case, resp.text)
        message = resp.json()["error"]["message"]
        # Not ours: the public-address rule answers (the host does not resolve, or is private).
        assert "not a public address" in message or "cannot be resolved" in message, (case, message)
    assert upstream_calls(simulator_session, "/submit/describe") == []
    assert (await ace.relay.balances())["used"] > 0  # only the imagine


async def test_public_url_host_is_ours_too(db, db_url, tmp_path, simulator_session):
    application = app_with(db_url, tmp_path, public_url="https://mj.example.org")
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:3000") as client:
            ace = await make_ace(client, db, simulator_session)
            grid = await ace.generate("a lantern")
            assert grid["image_url"].startswith("https://mj.example.org/mj/image/")
            answer = await ace.ok("/midjourney/describe", {"image_url": grid["image_url"]})
            assert len(answer["descriptions"]) == 4
            # The host the client called is ours as well, with the same signature.
            called = "http://10.0.0.5:3000" + signed_image_path("test-secret-key", grid["task_id"], 3600)
            assert len((await ace.ok("/midjourney/describe", {"image_url": called}))["descriptions"]) == 4


async def test_own_url_of_an_imageless_or_unknown_task(ace, simulator_session):
    shortened = await ace.ok("/midjourney/shorten", {"prompt": "a long prompt about lanterns"})
    url = "http://gateway.test" + signed_image_path("test-secret-key", shortened["task_id"], 3600)
    resp = await ace.call("/midjourney/describe", {"image_url": url})
    assert resp.status_code == 404 and "has no image" in resp.json()["error"]["message"]
    gone = "http://gateway.test" + signed_image_path("test-secret-key", "1234567890123456", 3600)
    resp = await ace.call("/midjourney/edits", {"image_url": gone, "prompt": "x"})
    assert resp.status_code == 404 and "not found" in resp.json()["error"]["message"]
