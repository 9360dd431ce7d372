"""The aiohttp application: task read routes, result files, and the wiring of everything else."""

from __future__ import annotations

import hashlib

from aiohttp import web

from . import control
from .cancel import cancel
from .config import SimulatorConfig
from .faults import simulator_middleware
from .httputil import ROUTE_PREFIXES, body_object, json_reply, read_json
from .runtime import SIM, Simulator
from .submit import SUBMIT_ROUTES

# Base64 images inflate bodies by a third; a few multi-megabyte images must still fit.
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_IDS_PER_QUERY = 1000
DEFAULT_LIST_LIMIT = 100


def _not_found(what: str = "task not found") -> web.Response:
    return json_reply({"code": 3, "description": what}, status=404)


async def fetch(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    sim.stats["fetches"] += 1
    task = sim.store.get(request.match_info["task_id"])
    return json_reply(sim.task_json(task)) if task else _not_found()


async def list_by_condition(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    sim.stats["list_by_condition_calls"] += 1
    body = body_object(await read_json(request))
    if isinstance(body, str):
        return json_reply({"code": 4, "description": body}, status=400)
    ids = body.get("ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
        return json_reply({"code": 4, "description": "ids must be an array of task ids"}, status=400)
    if len(ids) > MAX_IDS_PER_QUERY:
        return json_reply({"code": 4, "description": f"at most {MAX_IDS_PER_QUERY} ids per call"}, status=400)
    sim.stats["ids_polled"] += len(ids)
    found = (sim.store.get(str(i)) for i in dict.fromkeys(ids))
    return json_reply([sim.task_json(task) for task in found if task is not None])


async def list_tasks(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    try:
        limit = max(1, min(int(request.query.get("limit", DEFAULT_LIST_LIMIT)), MAX_IDS_PER_QUERY))
    except ValueError:
        return json_reply({"code": 4, "description": "limit must be an integer"}, status=400)
    newest = reversed(sim.store.tasks.values())
    return json_reply([sim.task_json(task) for task, _ in zip(newest, range(limit))])


async def queue(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    return json_reply([sim.task_json(task) for task in sim.store.active()])


async def image_seed(request: web.Request) -> web.Response:
    task = request.app[SIM].store.get(request.match_info["task_id"])
    if task is None:
        return _not_found()
    if task.status != "SUCCESS" or task.image_kind is None:
        return json_reply({"code": 4, "description": f"task {task.id} has no finished image", "result": None})
    seed = int(hashlib.sha256(task.render_seed.encode()).hexdigest()[:8], 16)
    return json_reply({"code": 1, "description": "success", "result": str(seed)})


async def image(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    task = sim.store.get(request.match_info["task_id"])
    found = await sim.image(task) if task else None
    if found is None:
        return _not_found("image not found")
    data, content_type = found
    headers = {"ETag": f'"{task.id}-{len(data)}"', "Cache-Control": "public, max-age=86400"}
    if request.headers.get("If-None-Match") == headers["ETag"]:
        return web.Response(status=304, headers=headers)
    sim.stats["images_served"] += 1
    return web.Response(body=data, content_type=content_type, headers=headers)


async def progress_image(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    task = sim.store.get(request.match_info["task_id"])
    data = await sim.progress_image(task, int(request.match_info["percent"])) if task else None
    if data is None:
        return _not_found("image not found")
    sim.stats["progress_images_served"] += 1
    return web.Response(body=data, content_type="image/png", headers={"Cache-Control": "public, max-age=86400"})


async def video(request: web.Request) -> web.Response:
    """Clip N of a video job (`/mj/video/{id}/{N}.mp4`); `/mj/video/{id}.mp4` is clip 0."""
    sim = request.app[SIM]
    task = sim.store.get(request.match_info["task_id"])
    data = await sim.video(task, int(request.match_info.get("index", 0))) if task else None
    if data is None:
        return _not_found("video not found")
    sim.stats["videos_served"] += 1
    return web.Response(body=data, content_type="video/mp4", headers={"Cache-Control": "public, max-age=86400"})


async def attachment(request: web.Request) -> web.Response:
    found = request.app[SIM].attachment(request.match_info["name"])
    if found is None:
        return _not_found("attachment not found")
    data, content_type = found
    return web.Response(body=data, content_type=content_type)


READ_ROUTES = [
    ("GET", "/mj/task/{task_id}/fetch", fetch),
    ("POST", "/mj/task/list-by-condition", list_by_condition),
    ("GET", "/mj/task/list", list_tasks),
    ("GET", "/mj/task/queue", queue),
    ("GET", "/mj/task/{task_id}/image-seed", image_seed),
    ("GET", "/mj/image/{task_id}.png", image),
    ("GET", r"/mj/image/{task_id}/progress-{percent:\d+}.png", progress_image),
    ("GET", "/mj/video/{task_id}.mp4", video),
    ("GET", r"/mj/video/{task_id}/{index:\d}.mp4", video),
    ("POST", "/mj/task/{task_id}/cancel", cancel),
    ("GET", "/mj/attachments/{name}", attachment),
]


async def _startup(app: web.Application) -> None:
    await app[SIM].notifier.start()


async def _cleanup(app: web.Application) -> None:
    app[SIM].store.clear()
    await app[SIM].notifier.close()


def create_app(config: SimulatorConfig) -> web.Application:
    app = web.Application(middlewares=[simulator_middleware], client_max_size=MAX_BODY_BYTES)
    app[SIM] = Simulator(config)
    routes = [("POST", path, handler) for path, handler in SUBMIT_ROUTES.items()] + READ_ROUTES
    for prefix in ROUTE_PREFIXES:
        for method, path, handler in routes:
            if method == "GET":
                app.router.add_get(prefix + path, handler)  # also answers HEAD
            else:
                app.router.add_post(prefix + path, handler)
    control.add_routes(app)
    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    return app
