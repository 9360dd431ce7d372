"""POST /midjourney/imagine against a real simulator: generate, every transform, sync/async/stream/callback."""

from __future__ import annotations

import asyncio
import io
import json
import time

import httpx
import pytest
from aiohttp import web
from PIL import Image

from mjgate.dialects.acedata.actions import TRANSFORMS
from mjgate.app import create_app
from mjgate.billing.pricing import QUOTA_PER_USD
from mjgate.config import Settings
from mjgate.accounts.webhook_secrets import secret_of
from mjgate.client import verify_webhook
from tests.acedata.conftest import PNG_DATA_URI, Ace, make_ace
from tests.fixtures.simulator import start_simulator_process

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
IMAGINE_PRICE = int(0.1 * QUOTA_PER_USD)


def upstream_calls(sim, fragment: str) -> list[dict]:
    return [r for r in sim.requests() if fragment in r["path"]]


async def fetch_mj(ace: Ace, mj_id: str) -> dict:
    resp = await ace.client.get(f"/mj/task/{mj_id}/fetch", headers=ace.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


@sqlite_only
async def test_generate_sync_answers_the_finished_image(ace, client, simulator_session):
    resp = await ace.call("/midjourney/imagine", {"prompt": "a red fox in snow", "mode": "fast", "action": "generate",
                                                 "translation": False, "split_images": False, "version": "6.1",
                                                 "quality": "1", "hd": False, "unknown_field": {"x": 1}})
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["trace_id"] == resp.headers["x-trace-id"]
    assert answer["success"] is True and answer["progress"] == 100
    assert answer["task_id"] == answer["image_id"] and len(answer["task_id"]) == 16
    assert answer["image_url"].startswith("http://gateway.test/mj/image/" + answer["task_id"] + "?")
    assert answer["raw_image_url"] == answer["image_url"]
    assert answer["actions"] == ["upscale1", "upscale2", "upscale3", "upscale4", "reroll",
                                 "variation1", "variation2", "variation3", "variation4"]
    # The size is the real size of the image the URL serves (read from its header).
    image = await client.get(answer["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(image.content))
    assert (answer["image_width"], answer["image_height"]) == picture.size
    assert (answer["raw_image_width"], answer["raw_image_height"]) == picture.size
    # version / quality became prompt parameters upstream; the trace id is stored with the task.
    sent = upstream_calls(simulator_session, "/submit/imagine")[0]
    assert sent["json"]["prompt"] == "a red fox in snow --v 6.1 --q 1"
    assert sent["path"] == "/mj-fast/mj/submit/imagine"  # an explicit mode is kept upstream
    again = await ace.ok("/midjourney/tasks", {"action": "retrieve", "trace_id": answer["trace_id"]})
    assert again["id"] == answer["task_id"]
    money = await ace.relay.balances()
    assert money["used"] == IMAGINE_PRICE and money["quota"] == money["ledger"]


@sqlite_only
async def test_every_transform_action(ace, simulator_session):
    grid = await ace.generate("a harbour at night")

    async def transform(parent: dict, action: str, **extra) -> tuple[str, dict]:
        answer = await ace.imagine({"action": action, "image_id": parent["image_id"], **extra})
        assert answer["success"] is True and answer["progress"] == 100, (action, answer)
        return action, answer

    # Grid buttons, run side by side (each call waits for its own result).
    done = dict(await asyncio.gather(*(transform(grid, a) for a in ("upscale1", "variation2", "reroll"))))
    upscaled = done["upscale1"]
    assert "variation_region" in upscaled["actions"] and "upscale1" not in upscaled["actions"]
    region = {"mask": PNG_DATA_URI, "prompt": "add a small moon"}
    single = ("zoom_out_2x", "zoom_out_1_5x", "pan_left", "pan_up", "variation_subtle", "variation_strong",
              "upscale_2x", "upscale_4x", "variation_region")
    done.update(dict(await asyncio.gather(
        *(transform(upscaled, a, **(region if a == "variation_region" else {})) for a in single))))

    expected = {  # AceData action -> the gateway's task action and the button pressed upstream
        "upscale1": ("UPSCALE", "MJ::JOB::upsample::1::"), "variation2": ("VARIATION", "MJ::JOB::variation::2::"),
        "reroll": ("REROLL", "MJ::JOB::reroll::0::"), "zoom_out_2x": ("ZOOM", "MJ::Outpaint::50::"),
        "zoom_out_1_5x": ("ZOOM", "MJ::Outpaint::75::"), "pan_left": ("PAN", "MJ::JOB::pan_left::"),
        "pan_up": ("PAN", "MJ::JOB::pan_up::"), "variation_subtle": ("LOW_VARIATION", "MJ::JOB::low_variation::"),
        "variation_strong": ("HIGH_VARIATION", "MJ::JOB::high_variation::"),
        "upscale_2x": ("UPSCALE", "MJ::JOB::upsample_v6_2x_subtle::"),
        "upscale_4x": ("UPSCALE", "MJ::JOB::upsample_v6_2x_creative::"),
        "variation_region": ("INPAINT", "MJ::Inpaint::"),
    }
    sent_ids = [c["json"]["customId"] for c in upstream_calls(simulator_session, "/submit/action")]
    for name, (action, prefix) in expected.items():
        task = await fetch_mj(ace, done[name]["task_id"])
        assert task["action"] == action and task["status"] == "SUCCESS", (name, task)
        assert sum(1 for c in sent_ids if c.startswith(prefix)) == 1, (name, sent_ids)
        assert done[name]["image_url"], name
    # Vary (Region) was the button and then the modal with the mask and the prompt, in one call.
    modal = upstream_calls(simulator_session, "/submit/modal")
    assert len(modal) == 1
    assert modal[0]["json"]["prompt"] == "add a small moon" and modal[0]["json"]["maskBase64"] == PNG_DATA_URI
    assert (await fetch_mj(ace, done["variation_region"]["task_id"]))["prompt"] == "add a small moon"
    # Follow-ups keep the parent's mode unless one is given (not pinned upstream then).
    assert all(c["path"] == "/mj/submit/action" for c in upstream_calls(simulator_session, "/submit/action"))
    assert set(TRANSFORMS) == set(expected) | {"upscale2", "upscale3", "upscale4", "variation1", "variation3",
                                              "variation4", "pan_right", "pan_down"}


@sqlite_only
async def test_transform_needs_an_offered_button_and_a_finished_own_image(ace, client, db, simulator_session):
    grid = await ace.generate()
    upscaled = await ace.imagine({"action": "upscale2", "image_id": grid["image_id"]})
    resp = await ace.call("/midjourney/imagine", {"action": "upscale1", "image_id": upscaled["image_id"]})
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "bad_request"
    assert "upscale1 is not available" in error["message"] and "variation_region" in error["message"]
    # The grid has no Vary (Region): a missing button, not an upstream call.
    resp = await ace.call("/midjourney/imagine", {"action": "variation_region", "image_id": grid["image_id"],
                                                 "mask": PNG_DATA_URI})
    assert resp.status_code == 400 and "not available" in resp.json()["error"]["message"]
    resp = await ace.call("/midjourney/imagine", {"action": "variation_region", "image_id": upscaled["image_id"]})
    assert resp.status_code == 400 and "mask" in resp.json()["error"]["message"]
    resp = await ace.call("/midjourney/imagine", {"action": "upscale1"})
    assert resp.status_code == 400 and "image_id is required" in resp.json()["error"]["message"]
    resp = await ace.call("/midjourney/imagine", {"action": "upscale1", "image_id": "1234567890123456"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    # Someone else's image is unknown to this key, exactly like a made-up id.
    other = await make_ace(client, db, simulator_session, name="mallory")
    resp = await other.call("/midjourney/imagine", {"action": "upscale1", "image_id": grid["image_id"]})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    # A task still running cannot be transformed yet.
    simulator_session.configure(step_seconds=5)
    pending = await ace.imagine({"prompt": "slow", "async": True})
    resp = await ace.call("/midjourney/imagine", {"action": "upscale1", "image_id": pending["task_id"]})
    assert resp.status_code == 400 and "once it has succeeded" in resp.json()["error"]["message"]
    # `task_id` is accepted in place of image_id.
    simulator_session.configure(step_seconds=0.05)
    answer = await ace.imagine({"action": "variation1", "task_id": grid["task_id"], "async": True})
    assert answer["success"] is True


@sqlite_only
async def test_async_answers_at_once_and_retrieve_follows(ace, simulator_session):
    simulator_session.configure(step_seconds=0.3)
    started = time.monotonic()
    answer = await ace.imagine({"prompt": "a paper boat", "async": True})
    assert time.monotonic() - started < 1.5
    assert set(answer) == {"success", "task_id", "trace_id"} and answer["success"] is True
    # While it runs, retrieve has no response.success (AceData's MCP server reads it as done/failed).
    first = await ace.retrieve(answer["task_id"])
    assert "success" not in first["response"] and first["success"] is True and "image_url" not in first
    deadline = time.monotonic() + 20
    while True:
        task = await ace.retrieve(answer["task_id"])
        if task["response"].get("success") is not None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert task["response"]["success"] is True and task["image_url"] == task["response"]["image_url"]
    assert task["request"] == {"prompt": "a paper boat", "async": True}
    assert task["response"]["trace_id"] == answer["trace_id"] != task["trace_id"]


@sqlite_only
async def test_mode_is_chosen_and_validated(ace, simulator_session):
    answer = await ace.imagine({"prompt": "a tram", "mode": "relax", "async": True})
    assert upstream_calls(simulator_session, "/submit/imagine")[0]["path"] == "/mj-relax/mj/submit/imagine"
    assert (await fetch_mj(ace, answer["task_id"]))["mode"] == "RELAX"
    resp = await ace.call("/midjourney/imagine", {"prompt": "a tram", "mode": "warp"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_request"


@sqlite_only
async def test_ndjson_streams_progress_then_the_result(ace, simulator_session):
    simulator_session.configure(step_seconds=1.0, steps=4)
    lines = []
    async with ace.client.stream("POST", "/midjourney/imagine", json={"prompt": "a glass teapot"},
                                 headers={**ace.headers, "Accept": "application/x-ndjson"}, timeout=60) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/x-ndjson") and resp.headers["x-trace-id"]
        async for line in resp.aiter_lines():
            if line.strip():
                lines.append(json.loads(line))
    assert len(lines) >= 3, lines
    assert {line["task_id"] for line in lines} == {lines[0]["task_id"]}
    progress = [line["progress"] for line in lines]
    assert progress == sorted(progress) and progress[0] < 100 and progress[-1] == 100
    assert any(0 < p < 100 for p in progress), progress  # progress steps, not only start and end
    assert all("image_url" not in line for line in lines[:-1])
    assert lines[-1]["success"] is True and lines[-1]["image_url"] and lines[-1]["actions"]


@sqlite_only
async def test_sync_timeout_answers_the_running_task(ace, simulator_session):
    simulator_session.configure(step_seconds=10)
    started = time.monotonic()
    resp = await ace.call("/midjourney/imagine", {"prompt": "a slow painting", "timeout": 1})
    elapsed = time.monotonic() - started
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert 0.9 <= elapsed < 5, elapsed
    assert answer["success"] is True and "image_url" not in answer and answer["progress"] < 100
    task = await ace.retrieve(answer["task_id"])
    assert "success" not in task["response"]  # still running, to be retrieved later


@sqlite_only
async def test_sync_failure_is_api_error_with_the_task_id_and_refunded(ace, simulator_session):
    simulator_session.configure(failure_rate=1.0)
    resp = await ace.call("/midjourney/imagine", {"prompt": "doomed"})
    assert resp.status_code == 500, resp.text
    body = resp.json()
    assert body["success"] is False and body["error"]["code"] == "api_error" and body["error"]["message"]
    assert body["trace_id"] == resp.headers["x-trace-id"] and body["task_id"]
    task = await ace.retrieve(body["task_id"])
    assert task["response"]["success"] is False and task["success"] is False
    assert task["error"] == task["response"]["error"]  # what `midjourney wait` stops on
    money = await ace.relay.balances()
    assert money["used"] == 0 and money["quota"] == money["ledger"]


@sqlite_only
async def test_banned_prompt_is_bad_request_and_costs_nothing(ace):
    resp = await ace.call("/midjourney/imagine", {"prompt": "something nsfw-banned"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_request"
    money = await ace.relay.balances()
    assert money["used"] == 0 and money["quota"] == money["ledger"]


# ----------------------------------------------------------------------------- callbacks


class Receiver:
    """A tiny HTTP server that records the callbacks it gets."""

    def __init__(self):
        self.bodies: list[tuple[dict, bytes, dict]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.bodies.append((json.loads(raw), raw, dict(request.headers)))
        self.arrived.set()
        return web.json_response({"ok": True})

    async def __aenter__(self):
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


@sqlite_only
async def test_callback_url_gets_the_result(db, db_url, tmp_path, simulator_session):
    # The full server: poller and webhook deliverer running in-process.
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data", secret_key="cb-secret",
                        poller_enabled=True, poller_interval_s=0.1,
                        webhook_allow_private=True)  # the receiver listens on 127.0.0.1
    application = create_app(settings)
    async with application.router.lifespan_context(application), Receiver() as receiver:
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            ace = await make_ace(client, db, simulator_session)
            resp = await ace.call("/midjourney/imagine", {"prompt": "a robot gardener", "callback_url": receiver.url})
            assert resp.status_code == 200
            answer = resp.json()
            assert set(answer) == {"success", "task_id", "trace_id"} and answer["success"] is True
            deadline = time.monotonic() + 30
            while not any(b.get("image_url") for b, _, _ in receiver.bodies):
                assert time.monotonic() < deadline, receiver.bodies
                await asyncio.sleep(0.1)
    final, raw, headers = next((b, r, h) for b, r, h in receiver.bodies if b.get("image_url"))
    assert final["success"] is True and final["task_id"] == answer["task_id"]
    assert final["trace_id"] == answer["trace_id"] and final["progress"] == 100
    assert final["image_url"].startswith("http://gateway.test/mj/image/" + answer["task_id"])
    assert "upscale1" in final["actions"]
    # Signed with the user's own webhook secret, in delivery order, one task only.
    async with db.write() as session:
        secret = await secret_of(session, ace.relay.user["id"])
    assert verify_webhook(headers, raw, secret, now=int(headers["webhook-timestamp"])) == final
    assert {b["task_id"] for b, _, _ in receiver.bodies} == {answer["task_id"]}
    progress = [b["progress"] for b, _, _ in receiver.bodies]
    assert progress == sorted(progress)


@sqlite_only
async def test_two_simulators_follow_up_stays_on_the_parent_channel(client, db):
    with start_simulator_process(secret="A") as sim_a, start_simulator_process(secret="B") as sim_b:
        ace = await make_ace(client, db, sim_a)
        grid = await ace.generate()
        from tests.fixtures.relay import add_simulator_channel
        await add_simulator_channel(db, sim_b, "B", priority=100)
        await ace.imagine({"action": "upscale3", "image_id": grid["image_id"]})
        assert len(upstream_calls(sim_a, "/submit/action")) == 1 and upstream_calls(sim_b, "/submit/") == []
