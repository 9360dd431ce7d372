"""The simulator over real HTTP, as a midjourney-proxy client (and the gateway) sees it."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import aiohttp
import httpx
import pytest
from aiohttp import web

from mjgate.simulator import SimulatorConfig, start
from tests.fixtures.simulator import start_simulator_process
from tests.simulator.helpers import TERMINAL, fetch, get_image, imagine, png_base64, press, submit, wait_done

# ---- lifecycle and results -------------------------------------------------------------------


def test_imagine_runs_through_progress_steps_to_a_grid_with_nine_buttons(simulator_session):
    sim = simulator_session
    answer = submit(sim, "submit/imagine", {"prompt": "a red fox", "state": "opaque-42"})
    assert answer["code"] == 1 and answer["description"] == "Submit success"
    assert isinstance(answer["result"], str) and len(answer["result"]) == 16

    task, seen = wait_done(sim, answer["result"])
    progress_in_flight = [p for s, p in seen if s == "IN_PROGRESS"]
    # Polling may miss a step on a busy machine; the notifyHook test checks every step exactly.
    assert seen[0][0] in {"SUBMITTED", "IN_PROGRESS"}
    assert progress_in_flight
    assert all(p in {"20%", "40%", "60%", "80%"} for p in progress_in_flight)
    assert progress_in_flight == sorted(progress_in_flight, key=lambda p: int(p[:-1]))
    assert seen[-1] == ("SUCCESS", "100%")

    assert task["action"] == "IMAGINE" and task["state"] == "opaque-42"
    assert task["prompt"] == task["promptEn"] == task["properties"]["finalPrompt"] == "a red fox"
    assert task["submitTime"] <= task["startTime"] <= task["finishTime"]
    assert task["failReason"] is None and task["botType"] == "MID_JOURNEY" and task["mode"] == "fast"
    labels = [b["label"] or b["emoji"] for b in task["buttons"]]
    assert labels == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    assert all(b["type"] == 2 and b["style"] in (1, 2) for b in task["buttons"])

    assert task["imageUrl"] == f"{sim.base_url}/mj/image/{task['id']}.png"
    size = sim.config()["image_size"]
    assert get_image(sim, task["imageUrl"]).size == (2 * size, 2 * size)


def test_aspect_ratio_shapes_the_grid(simulator_session):
    task = imagine(simulator_session, "a tall tower --ar 2:3")
    img = get_image(simulator_session, task["imageUrl"])
    assert img.height > img.width


def test_upscale_by_action_change_and_simple_change(simulator_session):
    sim = simulator_session
    grid = imagine(sim)
    hash_ = grid["buttons"][0]["customId"].rsplit("::", 1)[1]

    upscale = wait_done(sim, press(sim, grid, "MJ::JOB::upsample::1::")["result"])[0]
    assert upscale["action"] == "UPSCALE" and upscale["status"] == "SUCCESS"
    assert upscale["customId"] == f"MJ::JOB::upsample::1::{hash_}"
    assert upscale["prompt"] == grid["prompt"]
    size = sim.config()["image_size"]
    assert get_image(sim, upscale["imageUrl"]).size == (size, size)
    assert len(upscale["buttons"]) == 14
    assert any(b["customId"].startswith("MJ::Inpaint::1::") for b in upscale["buttons"])

    by_change = submit(sim, "submit/change", {"taskId": grid["id"], "action": "UPSCALE", "index": 2})
    assert by_change["code"] == 1
    assert wait_done(sim, by_change["result"])[0]["customId"] == f"MJ::JOB::upsample::2::{hash_}"

    by_simple = submit(sim, "submit/simple-change", {"content": f"{grid['id']} V3"})
    variation = wait_done(sim, by_simple["result"])[0]
    assert variation["action"] == "VARIATION" and len(variation["buttons"]) == 9

    # The hash alone finds the parent, as midjourney-proxy's action route allows.
    by_hash = submit(sim, "submit/action", {"customId": f"MJ::JOB::reroll::0::{hash_}::SOLO"})
    assert wait_done(sim, by_hash["result"])[0]["action"] == "REROLL"


def test_inpaint_needs_a_modal_then_runs(simulator_session):
    sim = simulator_session
    upscale = wait_done(sim, press(sim, imagine(sim), "MJ::JOB::upsample::4::")["result"])[0]

    answer = press(sim, upscale, "MJ::Inpaint::")
    assert answer["code"] == 21 and answer["result"]
    pending = fetch(sim, answer["result"]).json()
    assert pending["status"] == "MODAL" and pending["action"] == "INPAINT"

    confirmed = submit(
        sim, "submit/modal", {"taskId": answer["result"], "prompt": "a fox wearing a hat", "maskBase64": png_base64()}
    )
    assert confirmed == {**confirmed, "code": 1, "result": answer["result"]}
    done = wait_done(sim, answer["result"])[0]
    assert done["status"] == "SUCCESS" and done["prompt"] == "a fox wearing a hat"
    assert get_image(sim, done["imageUrl"]).size[0] == 2 * sim.config()["image_size"]

    again = submit(sim, "submit/modal", {"taskId": answer["result"]})
    assert again["code"] == 4

    zoom = press(sim, upscale, "MJ::CustomZoom::")
    assert zoom["code"] == 21 and fetch(sim, zoom["result"]).json()["action"] == "CUSTOM_ZOOM"


def test_describe_gives_four_numbered_prompts(simulator_session):
    sim = simulator_session
    image = png_base64()
    answer = submit(sim, "submit/describe", {"base64": f"data:image/png;base64,{image}"})
    assert answer["code"] == 1
    task = wait_done(sim, answer["result"])[0]
    assert task["action"] == "DESCRIBE" and task["status"] == "SUCCESS"
    options = task["prompt"].split("\n\n")
    assert [o[:3] for o in options] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]
    assert task["properties"]["finalPrompt"] == task["prompt"]
    assert httpx.get(task["imageUrl"]).content == base64.b64decode(image)


def test_other_submit_routes(simulator_session):
    sim = simulator_session
    size = sim.config()["image_size"]

    blend = submit(sim, "submit/blend", {"base64Array": [png_base64(), png_base64((0, 0, 255))], "dimensions": "LANDSCAPE"})
    blended = wait_done(sim, blend["result"])[0]
    assert blended["action"] == "BLEND"
    assert get_image(sim, blended["imageUrl"]).size == (2 * size, 2 * round(size * 2 / 3))

    long_prompt = "a very long prompt about foxes --v 6"
    shorten = wait_done(sim, submit(sim, "submit/shorten", {"prompt": long_prompt})["result"])[0]
    assert shorten["action"] == "SHORTEN" and shorten["imageUrl"] is None
    # As midjourney-proxy: the prompt stays as sent; the five options are the description and finalPrompt.
    assert shorten["prompt"] == shorten["promptEn"] == long_prompt
    options = shorten["description"].split("\n\n")
    assert len(options) == 5 and all("--v 6" in o for o in options)
    assert shorten["properties"]["finalPrompt"] == shorten["description"]

    upload = submit(sim, "submit/upload-discord-images", {"base64Array": [png_base64()]})
    assert upload["code"] == 1 and httpx.get(upload["result"][0]).status_code == 200

    swap = submit(sim, "insight-face/swap", {"sourceBase64": png_base64(), "targetBase64": png_base64((9, 9, 9))})
    assert get_image(sim, wait_done(sim, swap["result"])[0]["imageUrl"]).size == (size, size)

    edits = submit(sim, "submit/edits", {"prompt": "make it blue", "image": png_base64()})
    assert wait_done(sim, edits["result"])[0]["action"] == "EDIT"  # midjourney-proxy's name for it

    upscale = wait_done(sim, press(sim, imagine(sim), "MJ::JOB::upsample::1::")["result"])[0]
    video = wait_done(sim, press(sim, upscale, "MJ::JOB::animate_high::")["result"])[0]
    assert video["action"] == "VIDEO" and len(video["videoUrls"]) == 4
    assert video["videoUrls"][0] == {"url": video["videoUrl"]}
    clip = httpx.get(video["videoUrl"])
    assert clip.headers["content-type"] == "video/mp4" and clip.content[4:8] == b"ftyp"

    seed = sim.http.get(f"/mj/task/{upscale['id']}/image-seed", headers=sim.headers).json()
    assert seed["code"] == 1 and seed["result"].isdigit()


def test_mode_prefix_is_recorded_and_routes_alike(simulator_session):
    sim = simulator_session
    answer = submit(sim, "submit/imagine", {"prompt": "slow fox"}, prefix="/mj-relax")
    resp = sim.http.get(f"/mj-turbo/mj/task/{answer['result']}/fetch", headers=sim.headers)
    assert resp.status_code == 200 and resp.json()["mode"] == "relax"
    assert [r["mode"] for r in sim.requests()] == ["relax", "turbo"]


# ---- refusals -----------------------------------------------------------------------------


def test_queue_codes_22_and_23(simulator_session):
    sim = simulator_session
    sim.configure(core_size=1, queue_size=1, step_seconds=0.3)
    first = submit(sim, "submit/imagine", {"prompt": "one"})
    second = submit(sim, "submit/imagine", {"prompt": "two"})
    third = submit(sim, "submit/imagine", {"prompt": "three"})
    assert first["code"] == 1
    assert second["code"] == 22 and second["result"] and "queue" in second["description"].lower()
    assert third["code"] == 23 and third["result"] is None

    queued = sim.http.get("/mj/task/queue", headers=sim.headers).json()
    assert [t["id"] for t in queued] == [first["result"], second["result"]]
    assert queued[1]["status"] == "NOT_START"

    assert sim.finish_all() == 2
    assert {fetch(sim, t["id"]).json()["status"] for t in queued} == {"SUCCESS"}


def test_banned_word_is_code_24(simulator_session):
    answer = submit(simulator_session, "submit/imagine", {"prompt": "something NSFW-banned here"})
    assert answer["code"] == 24 and answer["result"] is None
    assert answer["properties"]["bannedWord"] == "nsfw-banned"


@pytest.mark.parametrize(
    ("route", "body", "code", "needle"),
    [
        ("submit/imagine", b"{not json", 4, "JSON"),
        ("submit/imagine", b"[1, 2]", 4, "object"),
        ("submit/imagine", {}, 4, "prompt"),
        ("submit/imagine", {"prompt": 7}, 4, "prompt"),
        ("submit/imagine", {"prompt": "x", "base64Array": ["%%%"]}, 4, "base64"),
        ("submit/imagine", {"prompt": "x", "notifyHook": "ftp://x"}, 4, "notifyHook"),
        ("submit/describe", {"base64": "not base64!"}, 4, "base64"),
        ("submit/blend", {"base64Array": ["aGVsbG8="]}, 4, "base64Array"),
        ("submit/action", {"taskId": "1", "customId": "MJ::JOB::explode::1::abc"}, 4, "customId"),
        ("submit/action", {"taskId": "nope", "customId": "MJ::JOB::upsample::1::abc"}, 3, "nope"),
        ("submit/change", {"taskId": "nope", "action": "UPSCALE", "index": 9}, 4, "index"),
        ("submit/change", {"taskId": "nope", "action": "UPSCALE", "index": 1}, 3, "nope"),
        ("submit/simple-change", {"content": "just words"}, 4, "content"),
        ("submit/modal", {"taskId": "nope"}, 3, "nope"),
        ("insight-face/swap", {"sourceBase64": png_base64()}, 4, "targetBase64"),
    ],
)
def test_bad_requests_get_a_code_not_a_crash(simulator_session, route, body, code, needle):
    content = body if isinstance(body, bytes) else None
    answer = submit(simulator_session, route, None if content else body, content=content)
    assert answer["code"] == code and answer["result"] is None
    assert needle.lower() in answer["description"].lower()


def test_buttons_of_the_wrong_task_or_unfinished_parent_are_refused(simulator_session):
    sim = simulator_session
    grid = imagine(sim)
    wrong = submit(sim, "submit/action", {"taskId": grid["id"], "customId": "MJ::Inpaint::1::abc::SOLO"})
    assert wrong["code"] == 4 and "not a button" in wrong["description"]

    sim.configure(step_seconds=5)
    running = submit(sim, "submit/imagine", {"prompt": "still going"})["result"]
    early = submit(sim, "submit/change", {"taskId": running, "action": "VARIATION", "index": 1})
    assert early["code"] == 4


def test_secret_is_required_except_for_result_files(simulator):
    sim = simulator  # a process of its own, started with the fixture's default secret
    assert sim.secret
    task = imagine(sim)
    for headers in ({}, {"mj-api-secret": "wrong"}):
        resp = sim.http.get(f"/mj/task/{task['id']}/fetch", headers=headers)
        assert resp.status_code == 401 and resp.json()["code"] == 401
    assert httpx.get(task["imageUrl"]).status_code == 200
    assert sim.http.get("/__sim/stats").status_code == 200


# ---- reads --------------------------------------------------------------------------------


def test_fetch_unknown_is_404_and_list_by_condition_skips_unknown(simulator_session):
    sim = simulator_session
    missing = fetch(sim, "1234567890123456")
    assert missing.status_code == 404 and missing.json()["code"] == 3

    a, b = imagine(sim, "first"), imagine(sim, "second")
    resp = sim.http.post(
        "/mj/task/list-by-condition", json={"ids": [b["id"], "nope", a["id"]]}, headers=sim.headers
    )
    assert [t["id"] for t in resp.json()] == [b["id"], a["id"]]
    stats = sim.stats()
    assert stats["list_by_condition_calls"] == 1 and stats["ids_polled"] == 3

    listed = sim.http.get("/mj/task/list", headers=sim.headers).json()
    assert [t["id"] for t in listed] == [b["id"], a["id"]]

    too_many = sim.http.post(
        "/mj/task/list-by-condition", json={"ids": [str(i) for i in range(1001)]}, headers=sim.headers
    )
    assert too_many.status_code == 400 and too_many.json()["code"] == 4


def test_request_log_stats_and_reset(simulator_session):
    sim = simulator_session
    submit(sim, "submit/imagine", {"prompt": "logged"})
    [entry] = sim.requests()
    assert entry["method"] == "POST" and entry["path"] == "/mj/submit/imagine"
    assert entry["headers"]["mj-api-secret"] == sim.secret and entry["json"] == {"prompt": "logged"}
    assert sim.stats()["submits"] == 1
    sim.reset()
    assert sim.requests() == [] and sim.stats()["submits"] == 0 and sim.stats()["tasks"] == 0


def test_big_image_streams_with_content_length(simulator_session):
    with httpx.stream("GET", f"{simulator_session.base_url}/__sim/big-image?mb=3") as resp:
        assert resp.headers["content-type"] == "image/png"
        assert int(resp.headers["content-length"]) == 3 * 1024 * 1024
        chunks = list(resp.iter_bytes())
    assert chunks[0].startswith(b"\x89PNG\r\n\x1a\n")
    assert sum(map(len, chunks)) == 3 * 1024 * 1024


# ---- faults -------------------------------------------------------------------------------


def test_failure_rate_ends_in_failure(simulator_session):
    sim = simulator_session
    sim.configure(failure_rate=1.0)
    answer = submit(sim, "submit/imagine", {"prompt": "doomed"})
    task = wait_done(sim, answer["result"])[0]
    assert task["status"] == "FAILURE" and task["progress"] == ""
    assert task["failReason"] and task["imageUrl"] is None and task["buttons"] == []


def test_error_slow_and_malformed_knobs(simulator_session):
    sim = simulator_session
    sim.configure(error_rate=1.0)
    resp = sim.http.post("/mj/submit/imagine", json={"prompt": "x"}, headers=sim.headers)
    assert resp.status_code == 500

    sim.configure(error_rate=0.0, malformed_rate=1.0)
    resp = sim.http.get("/mj/task/list", headers=sim.headers)
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        json.loads(resp.content)

    sim.configure(malformed_rate=0.0, slow_seconds=0.3)
    started = time.monotonic()
    assert sim.http.get("/mj/task/list", headers=sim.headers).status_code == 200
    assert time.monotonic() - started >= 0.3

    stats = sim.stats()
    assert stats["injected_errors"] == 1 and stats["injected_malformed"] == 1
    assert sim.http.post("/__sim/config", json={"error_rate": 2}).status_code == 400


def test_forgotten_tasks_are_accepted_then_unknown(simulator_session):
    sim = simulator_session
    sim.configure(forget_rate=1.0)
    answer = submit(sim, "submit/imagine", {"prompt": "lost"})
    assert answer["code"] == 1 and answer["result"]
    assert fetch(sim, answer["result"]).status_code == 404
    resp = sim.http.post("/mj/task/list-by-condition", json={"ids": [answer["result"]]}, headers=sim.headers)
    assert resp.json() == []


def test_restart_forgets_every_task(simulator_session):
    sim = simulator_session
    task = imagine(sim)
    sim.restart()
    assert fetch(sim, task["id"]).status_code == 404
    assert httpx.get(task["imageUrl"]).status_code == 404


# ---- notifyHook ---------------------------------------------------------------------------


async def test_notify_hook_receives_every_change_in_order(simulator_session):
    sim = simulator_session
    received: list[dict] = []
    done = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        if received[-1]["status"] in TERMINAL:
            done.set()
        return web.json_response({"ok": True})

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with httpx.AsyncClient(base_url=sim.base_url, headers=sim.headers) as http:
            answer = (
                await http.post("/mj/submit/imagine", json={"prompt": "tell me", "notifyHook": f"http://127.0.0.1:{port}/hook"})
            ).json()
            await asyncio.wait_for(done.wait(), timeout=5)
            # A hook that refuses connections is retried, then counted, not fatal.
            await http.post("/mj/submit/imagine", json={"prompt": "x", "notifyHook": "http://127.0.0.1:9/none"})
            for _ in range(300):
                if (await http.get("/__sim/stats")).json()["notify_failed"]:
                    break
                await asyncio.sleep(0.05)
            stats = (await http.get("/__sim/stats")).json()
    finally:
        await runner.cleanup()

    assert {m["id"] for m in received} == {answer["result"]}
    assert [(m["status"], m["progress"]) for m in received] == [
        ("SUBMITTED", "0%"),
        ("IN_PROGRESS", "20%"),
        ("IN_PROGRESS", "40%"),
        ("IN_PROGRESS", "60%"),
        ("IN_PROGRESS", "80%"),
        ("SUCCESS", "100%"),
    ]
    assert len(received[-1]["buttons"]) == 9
    assert stats["notify_sent"] == 6 and stats["notify_failed"] >= 1
    assert stats["notify_failed:ClientConnectorError"] >= 1 and stats["notify_retried"] >= 3


async def test_notify_retries_5xx_and_timeouts_but_not_a_refusal(simulator_session):
    """A receiver that fails for a moment (503) gets the post again, in order; a 4xx is final."""
    sim = simulator_session
    sim.configure(steps=0)  # SUBMITTED then SUCCESS: two posts per task
    seen: dict[str, list[str]] = {"flaky": [], "refusing": []}
    answers = {"flaky": [503, 503]}  # the first two posts fail, everything after succeeds
    done = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        seen[name].append((await request.json())["status"])
        if name == "refusing":
            return web.json_response({"code": 4, "description": "no"}, status=403)
        status = answers["flaky"].pop(0) if answers["flaky"] else 200
        if status == 200 and seen[name][-1] == "SUCCESS":
            done.set()
        return web.json_response({}, status=status)

    receiver = web.Application()
    receiver.router.add_post("/hook/{name}", hook)
    runner = web.AppRunner(receiver)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        async with httpx.AsyncClient(base_url=sim.base_url, headers=sim.headers) as http:
            for name in ("flaky", "refusing"):
                await http.post("/mj/submit/imagine", json={"prompt": name,
                                                            "notifyHook": f"http://127.0.0.1:{port}/hook/{name}"})
            await asyncio.wait_for(done.wait(), timeout=20)
            for _ in range(100):
                stats = (await http.get("/__sim/stats")).json()
                if stats["notify_failed"] >= 2:
                    break
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert seen["flaky"] == ["SUBMITTED", "SUBMITTED", "SUBMITTED", "SUCCESS"]  # retried, still in order
    assert seen["refusing"] == ["SUBMITTED", "SUCCESS"]  # each refused once, never retried
    assert stats["notify_retried"] == 2 and stats["notify_failed:http_403"] == 2
    assert stats["notify_sent"] == 2 and stats["notify_failed"] == 2


# ---- scale, process and in-process entry points ---------------------------------------------


async def test_hundreds_of_concurrent_tasks(simulator_session):
    sim = simulator_session
    sim.configure(core_size=1000, queue_size=0, step_seconds=0.1)
    count = 600
    # aiohttp as the gateway uses it: httpx alone would spend seconds on 600 requests here.
    async with aiohttp.ClientSession(sim.base_url, headers=sim.headers) as http:

        async def post(path: str, body: dict):
            async with http.post(path, json=body) as resp:
                return await resp.json()

        answers = await asyncio.gather(*(post("/mj/submit/imagine", {"prompt": f"fox {i}"}) for i in range(count)))
        ids = [a["result"] for a in answers]
        assert len(set(ids)) == count
        started = time.monotonic()
        while time.monotonic() - started < 10:
            batches = await asyncio.gather(
                *(post("/mj/task/list-by-condition", {"ids": ids[i : i + 100]}) for i in range(0, count, 100))
            )
            tasks = [task for batch in batches for task in batch]
            if all(t["status"] == "SUCCESS" for t in tasks):
                break
            await asyncio.sleep(0.05)
    assert len(tasks) == count and all(t["status"] == "SUCCESS" for t in tasks)
    # Every task runs at once (core_size 1000), so all finish about one lifecycle after submission.
    assert time.monotonic() - started < 3


def test_command_line_knobs_reach_the_config():
    with start_simulator_process(secret="", core_size=7, banned_words=["foo", "bar"], notify=False, seed=3) as sim:
        config = sim.config()
        assert (config["core_size"], config["banned_words"], config["notify"], config["seed"]) == (
            7,
            ["foo", "bar"],
            False,
            3,
        )
        # No secret configured: no header needed.
        assert sim.http.get("/mj/task/list").status_code == 200


async def test_in_process_start():
    runner, base_url = await start(SimulatorConfig(step_seconds=0.01, start_delay_seconds=0.0), port=0)
    try:
        async with httpx.AsyncClient(base_url=base_url) as http:
            task_id = (await http.post("/mj/submit/imagine", json={"prompt": "in process"})).json()["result"]
            for _ in range(200):
                task = (await http.get(f"/mj/task/{task_id}/fetch")).json()
                if task["status"] == "SUCCESS":
                    break
                await asyncio.sleep(0.01)
            assert task["status"] == "SUCCESS" and task["imageUrl"].startswith(base_url)
    finally:
        await runner.cleanup()
