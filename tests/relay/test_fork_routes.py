"""midjourney-proxy's most-used fork (trueai-org): POST /mj/submit/retexture and
/mj/insight-face/video-swap, forwarded like edits and swap, against a real simulator; and the
gateway's own image URLs given back through the midjourney-proxy face."""

from __future__ import annotations

import base64

import pytest

from mjgate.billing.pricing import QUOTA_PER_USD
from tests.fixtures.relay import add_simulator_channel, make_relay

PNG_B64 = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
RETEXTURE_PRICE = int(0.1 * QUOTA_PER_USD)
VIDEO_SWAP_PRICE = int(0.05 * QUOTA_PER_USD)


def upstream_calls(sim, fragment: str) -> list[dict]:
    return [r for r in sim.requests() if fragment in r["path"]]


async def test_retexture_and_video_swap_on_every_database(client, db, simulator_session):
    """On SQLite, PostgreSQL and MariaDB: accepted, finished, charged once each."""
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    answer = await relay.post("/mj/submit/retexture", {"prompt": "as carved wood", "image": PNG_B64, "state": "r"})
    assert answer["code"] == 1 and answer["result"]
    task = await relay.wait(answer["result"])
    assert task["status"] == "SUCCESS" and task["action"] == "RETEXTURE" and task["state"] == "r"
    assert task["imageUrl"].startswith("http://gateway.test/mj/image/")
    assert {"U1", "U4"} <= {b.get("label") for b in task["buttons"]}
    sent = upstream_calls(simulator_session, "/submit/retexture")[-1]
    assert sent["path"] == "/mj/submit/retexture"
    assert sent["json"]["prompt"] == "as carved wood" and sent["json"]["image"] == PNG_B64

    swap = await relay.post("/mj/insight-face/video-swap", {"sourceBase64": PNG_B64,
                                                            "targetUrl": "https://cdn.example.com/clip.mp4"})
    assert swap["code"] == 1
    swapped = await relay.wait(swap["result"])
    assert swapped["status"] == "SUCCESS" and swapped["action"] == "SWAP_VIDEO_FACE"
    assert swapped["videoUrl"].endswith(".mp4")
    # The fork binds video-swap from a form: the gateway sends one whatever the client sent.
    sent = upstream_calls(simulator_session, "/insight-face/video-swap")[-1]
    assert sent["headers"]["content-type"].startswith("multipart/form-data")
    assert sent["json"]["sourceBase64"] == PNG_B64 and sent["json"]["targetUrl"] == "https://cdn.example.com/clip.mp4"

    # A fork client's own request: a multipart form with the video as a file part.
    video = b"\x00\x00\x00\x18ftypmp42 a short clip"
    resp = await relay.client.post("/mj/insight-face/video-swap", headers=relay.headers,
                                   data={"sourceBase64": PNG_B64, "state": "form"},
                                   files={"targetFile": ("clip.mp4", video, "video/mp4")})
    from_form = resp.json()
    assert resp.status_code == 200 and from_form["code"] == 1, from_form
    formed = await relay.wait(from_form["result"])
    assert formed["status"] == "SUCCESS" and formed["state"] == "form"
    sent = upstream_calls(simulator_session, "/insight-face/video-swap")[-1]
    assert sent["headers"]["content-type"].startswith("multipart/form-data")
    assert sent["json"]["targetFile"] == {"filename": "clip.mp4", "contentType": "video/mp4", "bytes": len(video)}
    money = await relay.balances()
    assert money["used"] == RETEXTURE_PRICE + 2 * VIDEO_SWAP_PRICE and money["quota"] == money["ledger"]


async def test_retexture_image_by_url_and_mode_prefix(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    grid = await relay.wait((await relay.post("/mj/submit/imagine", {"prompt": "a teapot"}))["result"])
    served = (await client.get(grid["imageUrl"])).content
    # The gateway's own image URL becomes base64: the upstream could not reach the gateway's address.
    answer = await relay.post("/mj-relax/mj/submit/retexture", {"prompt": "as glass", "image": grid["imageUrl"]})
    assert answer["code"] == 1
    sent = upstream_calls(simulator_session, "/submit/retexture")[-1]
    assert sent["path"] == "/mj-relax/mj/submit/retexture"
    assert base64.b64decode(sent["json"]["image"].split(",", 1)[1]) == served
    # Any other URL is the upstream's to fetch, as midjourney-proxy's fork does.
    await relay.post("/mj/submit/retexture", {"prompt": "as stone", "image": "https://cdn.example.com/a.png"})
    assert upstream_calls(simulator_session, "/submit/retexture")[-1]["json"]["image"] == "https://cdn.example.com/a.png"
    # A face by the gateway's own URL, too.
    await relay.post("/mj/insight-face/video-swap", {"sourceUrl": grid["imageUrl"],
                                                     "targetUrl": "https://cdn.example.com/clip.mp4"})
    sent = upstream_calls(simulator_session, "/insight-face/video-swap")[-1]["json"]
    assert "sourceUrl" not in sent and base64.b64decode(sent["sourceBase64"].split(",", 1)[1]) == served
    # The same for edits' image and for image prompts at the head of an imagine prompt.
    assert (await relay.post("/mj/submit/edits", {"prompt": "add steam", "image": grid["imageUrl"]}))["code"] == 1
    sent = upstream_calls(simulator_session, "/submit/edits")[-1]["json"]
    assert base64.b64decode(sent["image"].split(",", 1)[1]) == served
    answer = await relay.post("/mj/submit/imagine", {"prompt": f"{grid['imageUrl']} a teapot in a garden",
                                                     "base64Array": [PNG_B64]})
    assert answer["code"] == 1
    sent = upstream_calls(simulator_session, "/submit/imagine")[-1]["json"]
    assert sent["prompt"] == "a teapot in a garden" and sent["base64Array"][0] == PNG_B64
    assert base64.b64decode(sent["base64Array"][1].split(",", 1)[1]) == served
    # Fetch shows the prompt as the client wrote it.
    assert (await relay.fetch(answer["result"]))["prompt"] == f"{grid['imageUrl']} a teapot in a garden"


@pytest.mark.parametrize("path,body,words", [
    ("/mj/submit/retexture", {"image": PNG_B64}, "prompt"),
    ("/mj/submit/retexture", {"prompt": "x"}, "image"),
    ("/mj/submit/retexture", {"prompt": "x", "image": "ftp://example.com/a.png"}, "image"),
    ("/mj/insight-face/video-swap", {"targetUrl": "https://cdn.example.com/clip.mp4"}, "sourceBase64"),
    ("/mj/insight-face/video-swap", {"sourceBase64": PNG_B64}, "targetUrl"),
    ("/mj/insight-face/video-swap", {"sourceBase64": PNG_B64, "targetUrl": "clip.mp4"}, "targetUrl"),
])
async def test_bad_bodies_are_code_4_and_free(client, db, simulator_session, path, body, words):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    answer = await relay.post(path, body)
    assert answer["code"] == 4 and words in answer["description"] and answer["result"] is None
    assert upstream_calls(simulator_session, "/submit/") == [] and upstream_calls(simulator_session, "/insight") == []
    assert (await relay.balances())["used"] == 0


@pytest.mark.parametrize("video,words", [(b"", "empty"), (b"\0" * (10 * 1024 * 1024 + 1), "larger than 10 MB")])
async def test_a_video_file_that_is_empty_or_too_big_is_code_4_and_free(client, db, simulator_session, video, words):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    resp = await relay.client.post("/mj/insight-face/video-swap", headers=relay.headers,
                                   data={"sourceBase64": PNG_B64}, files={"targetFile": ("clip.mp4", video, "video/mp4")})
    answer = resp.json()
    assert resp.status_code == 200 and answer["code"] == 4 and words in answer["description"], answer
    assert upstream_calls(simulator_session, "/insight") == [] and (await relay.balances())["used"] == 0


async def test_a_swapped_video_is_kept_and_served_as_a_video(client, db, app, simulator_session):
    """The result of SWAP_VIDEO_FACE is in imageUrl: the image copier keeps it with its type, and the
    gateway serves it as video/mp4, byte for byte the upstream's."""
    import asyncio

    import httpx
    from sqlalchemy import select

    from mjgate.models import Task

    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    swap = await relay.post("/mj/insight-face/video-swap", {"sourceBase64": PNG_B64,
                                                            "targetUrl": "https://cdn.example.com/clip.mp4"})
    task = await relay.wait(swap["result"])
    key = ""
    for _ in range(100):
        async with db.read() as session:
            key = (await session.scalars(select(Task.stored_image).where(Task.mj_id == task["id"]))).one()
        if key:
            break
        await asyncio.sleep(0.1)
    assert key.endswith(".mp4"), key
    served = await relay.client.get(task["imageUrl"])
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    async with db.read() as session:
        upstream_url = (await session.scalars(select(Task.image_url).where(Task.mj_id == task["id"]))).one()
    assert served.content == httpx.get(upstream_url).content
