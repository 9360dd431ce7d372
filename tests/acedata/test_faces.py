"""AceData's /midjourney/edits, /videos, /shorten and split_images against a real simulator: sync,
async with a callback_url, and NDJSON, in AceData's shapes."""

from __future__ import annotations

import asyncio
import io
import json
import time

import httpx
import pytest
from PIL import Image

from mjgate.app import create_app
from mjgate.billing.pricing import QUOTA_PER_USD
from mjgate.config import Settings
from tests.acedata.conftest import PNG_DATA_URI, Ace, make_ace
from tests.acedata.test_imagine import Receiver

EDITS_PRICE = int(0.1 * QUOTA_PER_USD)
VIDEO_PRICE = int(0.8 * QUOTA_PER_USD)


def upstream_calls(sim, fragment: str) -> list[dict]:
    return [r for r in sim.requests() if fragment in r["path"]]


async def ndjson_lines(ace: Ace, path: str, body: dict) -> list[dict]:
    async with ace.client.stream("POST", path, json=body, headers={**ace.headers, "Accept": "application/x-ndjson"},
                                 timeout=60) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) async for line in resp.aiter_lines() if line.strip()]


async def retrieve_when_done(ace: Ace, task_id: str) -> dict:
    deadline = time.monotonic() + 30
    while "success" not in (item := await ace.retrieve(task_id))["response"]:
        assert time.monotonic() < deadline, item
        await asyncio.sleep(0.2)
    return item


# ------------------------------------------------------------------ edits


async def test_edits_sync_with_mask_on_every_database(ace, simulator_session):
    """Runs on SQLite, PostgreSQL and MariaDB: the edits task, its charge and its retrieve item."""
    answer = await ace.ok("/midjourney/edits", {"image_url": PNG_DATA_URI, "prompt": "add a red scarf",
                                                "mask": PNG_DATA_URI, "mode": "fast"})
    assert answer["success"] is True and answer["progress"] == 100
    assert answer["image_id"] == answer["task_id"]
    assert answer["image_url"].startswith(f"http://gateway.test/mj/image/{answer['task_id']}?")
    assert "upscale1" in answer["actions"] and "image_urls" not in answer
    sent = upstream_calls(simulator_session, "/submit/edits")[-1]
    assert sent["path"] == "/mj-fast/mj/submit/edits"
    assert sent["json"]["prompt"] == "add a red scarf" and sent["json"]["image"] == PNG_DATA_URI
    assert sent["json"]["maskBase64"] == PNG_DATA_URI
    item = await ace.retrieve(answer["task_id"])
    assert item["type"] == "edits" and item["image_id"] == answer["task_id"]
    assert item["request"]["prompt"] == "add a red scarf" and item["response"]["image_url"] == answer["image_url"]
    money = await ace.relay.balances()
    assert money["used"] == EDITS_PRICE and money["quota"] == money["ledger"]
    # An edits grid is a grid: its buttons work through imagine's actions.
    up = await ace.imagine({"action": "upscale2", "image_id": answer["image_id"]})
    assert up["success"] is True and up["image_url"]


async def test_edits_bad_input_is_a_400_and_costs_nothing(ace, simulator_session):
    for body, words in (({"prompt": "x"}, "image_url is required"),
                        ({"image_url": PNG_DATA_URI}, "prompt"),
                        ({"image_url": PNG_DATA_URI, "prompt": "x", "mask": "not base64!"}, "mask"),
                        ({"image_url": "http://10.0.0.1/cat.png", "prompt": "x"}, "not a public address"),
                        ({"image_url": PNG_DATA_URI, "prompt": "x", "split_images": "maybe"}, "split_images")):
        resp = await ace.call("/midjourney/edits", body)
        assert resp.status_code == 400, (body, resp.text)
        error = resp.json()
        assert error["success"] is False and error["error"]["code"] == "bad_request"
        assert words in error["error"]["message"], (body, error)
    assert upstream_calls(simulator_session, "/submit/edits") == []
    assert (await ace.relay.balances())["used"] == 0


async def test_edits_async_then_retrieve(ace):
    answer = await ace.ok("/midjourney/edits", {"image_url": PNG_DATA_URI, "prompt": "a blue hat", "async": True})
    assert set(answer) == {"success", "task_id", "trace_id"}
    item = await retrieve_when_done(ace, answer["task_id"])
    assert item["response"]["success"] is True and item["response"]["image_url"]


async def test_edits_ndjson_streams_then_ends_with_the_result(ace):
    lines = await ndjson_lines(ace, "/midjourney/edits", {"image_url": PNG_DATA_URI, "prompt": "a paper boat"})
    assert len(lines) >= 2 and all(line["task_id"] == lines[0]["task_id"] for line in lines)
    assert [line["progress"] for line in lines] == sorted(line["progress"] for line in lines)
    assert lines[-1]["success"] is True and lines[-1]["progress"] == 100 and lines[-1]["image_url"]


# ------------------------------------------------------------------ split_images


async def test_split_images_are_four_real_quarters_of_the_grid(ace, client, app, tmp_path):
    answer = await ace.imagine({"prompt": "four seasons of one tree", "split_images": True})
    urls = answer["image_urls"]
    assert len(urls) == 4 and answer["sub_image_urls"] == urls
    assert all(u.startswith(f"http://gateway.test/mj/image/{answer['task_id']}/{n}?") for n, u in zip("1234", urls))
    grid = Image.open(io.BytesIO((await client.get(answer["image_url"])).content))
    width, height = grid.size
    boxes = [(0, 0, width // 2, height // 2), (width // 2, 0, width, height // 2),
             (0, height // 2, width // 2, height), (width // 2, height // 2, width, height)]
    for url, box in zip(urls, boxes):
        resp = await client.get(url)
        assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
        part = Image.open(io.BytesIO(resp.content))
        assert part.size == (box[2] - box[0], box[3] - box[1])
        assert part.convert("RGB").tobytes() == grid.convert("RGB").crop(box).tobytes()
    # Kept in the image store once cut.
    stored = sorted(p.name for p in (tmp_path / "data" / "images").rglob(f"{answer['task_id']}-*.png"))
    assert stored == [f"{answer['task_id']}-{n}.png" for n in range(1, 5)]
    # The URLs are signed: a forged part is refused; retrieve repeats them.
    forged = urls[0].replace("/1?", "/2?")
    assert (await client.get(forged)).status_code == 403
    item = await ace.retrieve(answer["task_id"])
    assert item["response"]["image_urls"] == urls and item["image_urls"] == urls
    # Without split_images, no parts.
    plain = await ace.imagine({"prompt": "one tree"})
    assert "image_urls" not in plain


async def test_split_images_only_for_grids(ace):
    grid = await ace.imagine({"prompt": "a lantern", "split_images": True})
    assert len(grid["image_urls"]) == 4
    single = await ace.imagine({"action": "upscale1", "image_id": grid["image_id"], "split_images": True})
    assert single["image_url"] and "image_urls" not in single


# ------------------------------------------------------------------ videos


async def test_video_generate_and_extend_on_every_database(ace, client, simulator_session):
    """Runs on SQLite, PostgreSQL and MariaDB."""
    answer = await ace.ok("/midjourney/videos", {"action": "generate", "prompt": "waves on a beach",
                                                 "image_url": PNG_DATA_URI, "end_image_url": PNG_DATA_URI,
                                                 "resolution": "720p", "loop": True})
    assert answer["success"] is True and answer["progress"] == 100
    assert answer["video_id"] == answer["task_id"] and "image_id" not in answer
    assert len(answer["video_urls"]) == 4 and all(u.endswith(".mp4") for u in answer["video_urls"])
    assert answer["image_url"].startswith(f"http://gateway.test/mj/image/{answer['task_id']}?")
    assert answer["cover_image_url"] == answer["image_url"]
    sent = upstream_calls(simulator_session, "/submit/video")[-1]["json"]
    assert sent["videoType"] == "vid_1.1_i2v_720" and sent["batchSize"] == 4 and sent["loop"] is True
    assert sent["image"] == PNG_DATA_URI and sent["endImage"] == PNG_DATA_URI and sent["prompt"] == "waves on a beach"
    item = await ace.retrieve(answer["task_id"])
    assert item["type"] == "videos" and item["video_id"] == answer["task_id"]
    assert item["response"]["video_urls"] == answer["video_urls"] and item["video_urls"] == answer["video_urls"]

    extended = await ace.ok("/midjourney/videos", {"action": "extend", "video_id": answer["video_id"],
                                                   "video_index": 2, "prompt": "the tide comes in"})
    assert extended["success"] is True and extended["video_id"] != answer["video_id"]
    assert len(extended["video_urls"]) == 4
    sent = upstream_calls(simulator_session, "/submit/video")[-1]["json"]
    assert sent["action"] == "extend" and sent["index"] == 2 and sent["taskId"]
    money = await ace.relay.balances()
    assert money["used"] == 2 * VIDEO_PRICE and money["quota"] == money["ledger"]

    # The management API shows the clips as seeds 000-001 do: video_url and a JSON string video_urls.
    listed = await client.get("/api/mj/self", params={"mj_id": answer["task_id"]}, headers=ace.relay.user["headers"])
    row = listed.json()["data"]["items"][0]
    assert row["video_url"] == answer["video_urls"][0] and json.loads(row["video_urls"]) == answer["video_urls"]


async def test_video_refusals(ace, simulator_session):
    grid = await ace.generate()
    cases = (({"action": "generate", "prompt": "x"}, 400, "image_url is required"),
             ({"action": "generate", "image_url": PNG_DATA_URI, "prompt": "x", "resolution": "4k"}, 400, "resolution"),
             ({"action": "extend"}, 400, "video_id is required"),
             ({"action": "extend", "video_id": grid["image_id"]}, 400, "not a video"),
             ({"action": "extend", "video_id": "0000000000000000"}, 404, "not found"),
             ({"action": "dance", "prompt": "x"}, 400, "not implemented"))
    for body, status, words in cases:
        resp = await ace.call("/midjourney/videos", body)
        assert resp.status_code == status, (body, resp.text)
        assert words in resp.json()["error"]["message"], (body, resp.json())
    assert upstream_calls(simulator_session, "/submit/video") == []


async def test_video_ndjson(ace):
    lines = await ndjson_lines(ace, "/midjourney/videos", {"prompt": "a candle flame", "image_url": PNG_DATA_URI})
    assert lines[-1]["success"] is True and len(lines[-1]["video_urls"]) == 4
    assert all(line["video_id"] == lines[0]["task_id"] for line in lines)


# ------------------------------------------------------------------ shorten


async def test_shorten_sync_and_ndjson(ace, simulator_session):
    prompt = "a very long and winding prompt about a fox in a snowy birch forest at dawn --ar 3:2"
    answer = await ace.ok("/midjourney/shorten", {"prompt": prompt})
    assert answer["success"] is True and answer["progress"] == 100 and "image_url" not in answer
    prompts = answer["prompts"]
    assert len(prompts) == 5 and all(p.endswith("--ar 3:2") and not p[0].isdigit() for p in prompts)
    assert prompts[0].startswith("a very long") and len(prompts[-1]) < len(prompts[0])
    item = await ace.retrieve(answer["task_id"])
    assert item["type"] == "shorten" and item["response"]["prompts"] == prompts
    lines = await ndjson_lines(ace, "/midjourney/shorten", {"prompt": "foxes and owls"})
    assert lines[-1]["success"] is True and len(lines[-1]["prompts"]) == 5
    resp = await ace.call("/midjourney/shorten", {})
    assert resp.status_code == 400 and "prompt" in resp.json()["error"]["message"]


# ------------------------------------------------------------------ callbacks


async def test_callback_url_for_edits_videos_and_shorten(db, db_url, tmp_path, simulator_session):
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data", secret_key="cb-secret",
                        poller_enabled=True, poller_interval_s=0.1, webhook_allow_private=True)
    application = create_app(settings)
    async with application.router.lifespan_context(application), Receiver() as receiver:
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            ace = await make_ace(client, db, simulator_session)
            ids = {}
            for path, body in (("/midjourney/edits", {"image_url": PNG_DATA_URI, "prompt": "a kite"}),
                               ("/midjourney/videos", {"prompt": "a kite flies", "image_url": PNG_DATA_URI}),
                               ("/midjourney/shorten", {"prompt": "a kite over a long green hill"})):
                answer = await ace.ok(path, {**body, "callback_url": receiver.url})
                assert set(answer) == {"success", "task_id", "trace_id"}
                ids[path] = answer["task_id"]
            deadline = time.monotonic() + 40

            def final(task_id: str) -> dict | None:
                return next((b for b, _, _ in receiver.bodies if b["task_id"] == task_id and b["progress"] == 100),
                            None)

            while not all(final(i) for i in ids.values()):
                assert time.monotonic() < deadline, receiver.bodies
                await asyncio.sleep(0.1)
    assert final(ids["/midjourney/edits"])["image_url"].startswith("http://gateway.test/mj/image/")
    assert len(final(ids["/midjourney/videos"])["video_urls"]) == 4
    assert len(final(ids["/midjourney/shorten"])["prompts"]) == 5
