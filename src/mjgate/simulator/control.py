"""/__sim/* routes: inspect and steer the simulator from tests. No secret, no faults."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .httputil import body_object, json_reply, read_json
from .render import PNG_PREFIX
from .runtime import SIM

BIG_IMAGE_MAX_MB = 4096
BIG_IMAGE_CHUNK = bytes(range(256)) * 1024  # 256 KiB, written again and again


async def request_log(request: web.Request) -> web.Response:
    return json_reply(list(request.app[SIM].requests))


async def stats(request: web.Request) -> web.Response:
    return json_reply(request.app[SIM].stats_view())


async def get_config(request: web.Request) -> web.Response:
    return json_reply(request.app[SIM].config.to_dict())


async def set_config(request: web.Request) -> web.Response:
    body = body_object(await read_json(request))
    if isinstance(body, str):
        return json_reply({"error": body}, status=400)
    try:
        config = request.app[SIM].configure(body)
    except ValueError as exc:
        return json_reply({"error": str(exc)}, status=400)
    return json_reply(config.to_dict())


async def reset(request: web.Request) -> web.Response:
    request.app[SIM].reset()
    return json_reply({"ok": True})


async def restart(request: web.Request) -> web.Response:
    request.app[SIM].restart()
    return json_reply({"ok": True})


async def finish_all(request: web.Request) -> web.Response:
    return json_reply({"finished": request.app[SIM].store.finish_all()})


async def finish_one(request: web.Request) -> web.Response:
    """End one task now (its planned success or failure); its slot goes to the next waiting task."""
    store = request.app[SIM].store
    task = store.get(request.match_info["task_id"])
    if task is None:
        return json_reply({"error": "task not found"}, status=404)
    if not store.finish(task):
        return json_reply({"error": f"task {task.id} is {task.status}"}, status=409)
    return json_reply({"finished": task.id, "status": task.status})


async def big_image(request: web.Request) -> web.StreamResponse:
    """N MB behind a PNG signature, streamed in chunks: for testing the gateway's image relay.

    `delay_ms` sleeps between chunks so a test can disconnect half-way through.
    """
    try:
        mb = float(request.query.get("mb", "1"))
        delay_s = float(request.query.get("delay_ms", "0")) / 1000
    except ValueError:
        return json_reply({"error": "mb and delay_ms must be numbers"}, status=400)
    if not 0 < mb <= BIG_IMAGE_MAX_MB or delay_s < 0:
        return json_reply({"error": f"mb must be in (0, {BIG_IMAGE_MAX_MB}], delay_ms >= 0"}, status=400)
    size = int(mb * 1024 * 1024)
    resp = web.StreamResponse(headers={"Content-Type": "image/png", "Cache-Control": "no-store"})
    resp.content_length = size
    await resp.prepare(request)
    counters = request.app[SIM].stats
    # Open / completed / aborted streams let a test see that a reader released its connection.
    counters["big_image_open"] += 1
    outcome = "big_image_aborted"
    try:
        head = PNG_PREFIX[:size]
        await resp.write(head)
        remaining = size - len(head)
        while remaining > 0:
            n = min(len(BIG_IMAGE_CHUNK), remaining)
            await resp.write(BIG_IMAGE_CHUNK if n == len(BIG_IMAGE_CHUNK) else BIG_IMAGE_CHUNK[:n])
            remaining -= n
            if delay_s:
                await asyncio.sleep(delay_s)
        await resp.write_eof()
        outcome = "big_image_completed"
    except ConnectionError:
        pass  # the reader went away; that is what some tests are about
    finally:
        counters["big_image_open"] -= 1
        counters[outcome] += 1
    return resp


def add_routes(app: web.Application) -> None:
    app.router.add_get("/__sim/requests", request_log)
    app.router.add_get("/__sim/stats", stats)
    app.router.add_get("/__sim/config", get_config)
    app.router.add_post("/__sim/config", set_config)
    app.router.add_post("/__sim/reset", reset)
    app.router.add_post("/__sim/restart", restart)
    app.router.add_post("/__sim/finish-all", finish_all)
    app.router.add_post("/__sim/finish/{task_id}", finish_one)
    app.router.add_get("/__sim/big-image", big_image)
