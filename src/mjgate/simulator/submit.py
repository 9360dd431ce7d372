"""The /mj/submit/* routes: validate, create a task, admit it to the executor.

Every answer is HTTP 200 with midjourney-proxy's `{code, description, result, properties}`;
a refusal is a code, never an HTTP error or a crash.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .buttons import ParsedCustomId, change_custom_id, parse_custom_id
from .httputil import body_object, json_reply, read_json, split_mode
from .render import aspect_of
from .runtime import SIM, Simulator
from .state import QueueFull, Task

BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")
DIMENSIONS = ("PORTRAIT", "SQUARE", "LANDSCAPE")
_SIMPLE_CHANGE = re.compile(r"^\s*(\S+)\s+(U[1-4]|V[1-4]|R)\s*$", re.IGNORECASE)
_DATA_URL = re.compile(r"^data:[^,]*;base64,", re.IGNORECASE)
_PROMPT_MODE = re.compile(r"--(fast|relax|turbo)\b")


class Reject(Exception):
    def __init__(self, code: int, description: str, properties: dict | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.properties = code, description, properties or {}


def reply(code: int, description: str, result: Any = None, properties: dict | None = None) -> web.Response:
    return json_reply({"code": code, "description": description, "result": result, "properties": properties or {}})


Handler = Callable[[web.Request, Simulator, dict], Awaitable[web.Response]]


def submit_route(fn: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        sim = request.app[SIM]
        sim.stats["submits"] += 1
        try:
            body = body_object(await read_json(request))
            if isinstance(body, str):
                raise Reject(4, body)
            return await fn(request, sim, body)
        except Reject as r:
            return reply(r.code, r.description, None, r.properties)

    return handle


# ---- field readers ------------------------------------------------------------------------


def text(body: dict, name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise Reject(4, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise Reject(4, f"{name} must be a string")
    if required and not value.strip():
        raise Reject(4, f"{name} must not be blank")
    return value


def decode_base64(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not value.strip():
        raise Reject(4, f"{name} must be a non-empty base64 string")
    payload = "".join(_DATA_URL.sub("", value.strip()).split())
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise Reject(4, f"{name} is not valid base64") from None
    if not data:
        raise Reject(4, f"{name} decodes to nothing")
    return data


def base64_list(body: dict, name: str, lo: int, hi: int) -> list[bytes]:
    values = body.get(name)
    if values is None:
        values = []
    if not isinstance(values, list):
        raise Reject(4, f"{name} must be an array of base64 strings")
    if not lo <= len(values) <= hi:
        raise Reject(4, f"{name} must hold {lo} to {hi} images, got {len(values)}")
    return [decode_base64(v, f"{name}[{i}]") for i, v in enumerate(values)]


def check_banned(sim: Simulator, prompt: str | None) -> None:
    lowered = (prompt or "").lower()
    for word in sim.config.banned_words:
        if word and word.lower() in lowered:
            raise Reject(24, "May contain sensitive words", {"promptEn": prompt, "bannedWord": word})


def common_fields(request: web.Request, body: dict, prompt: str = "") -> dict:
    """The fields every new task takes from its request."""
    hook = text(body, "notifyHook")
    if hook is not None and not hook.startswith(("http://", "https://")):
        raise Reject(4, "notifyHook must be an http(s) URL")
    bot = text(body, "botType") or "MID_JOURNEY"
    if bot not in BOT_TYPES:
        raise Reject(4, f"botType must be one of {', '.join(BOT_TYPES)}")
    state = body.get("state")
    mode = split_mode(request.path)[0]
    if mode is None:
        flag = _PROMPT_MODE.search(prompt)
        mode = flag.group(1) if flag else "fast"
    return {
        "notify_hook": hook,
        "bot_type": bot,
        "state": state if state is None or isinstance(state, str) else str(state),
        "mode": mode,
    }


def find_parent(sim: Simulator, task_id: Any) -> Task:
    if not isinstance(task_id, str) or not task_id:
        raise Reject(4, "taskId is required")
    parent = sim.store.get(task_id)
    if parent is None:
        raise Reject(3, f"task {task_id} does not exist or has expired")
    return parent


# ---- admission ----------------------------------------------------------------------------


def accept(sim: Simulator, task: Task) -> web.Response:
    if sim.chance(sim.config.forget_rate):
        # Answer as if accepted, then never speak of it again: an upstream that lost the job.
        room = sim.store.room()
        if room == "full":
            raise Reject(23, "Queue is full, please try again later")
        sim.stats["forgotten"] += 1
        return accepted_reply(task, None if room == "run" else 0)
    try:
        ahead = sim.store.admit(task)
    except QueueFull:
        raise Reject(23, "Queue is full, please try again later") from None
    return accepted_reply(task, ahead)


def accepted_reply(task: Task, ahead: int | None) -> web.Response:
    props = {"discordInstanceId": "simulator"}
    if ahead is None:
        return reply(1, "Submit success", task.id, props)
    props["numberOfQueues"] = ahead
    return reply(22, f"In queue, there are {ahead} tasks ahead", task.id, props)


def new_task(sim: Simulator, request: web.Request, body: dict, action: str, prompt: str, **fields) -> Task:
    fields = {**common_fields(request, body, prompt), **fields}
    return sim.store.new_task(action, prompt, **fields)


# ---- routes -------------------------------------------------------------------------------


@submit_route
async def imagine(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    prompt = text(body, "prompt", required=True)
    check_banned(sim, prompt)
    images = base64_list(body, "base64Array", 0, 5)
    if body.get("base64"):  # the older single-image field
        images.append(decode_base64(body["base64"], "base64"))
    urls = [sim.add_attachment(data) for data in images]
    final = " ".join([*urls, prompt])
    task = new_task(sim, request, body, "IMAGINE", prompt, final_prompt=final, aspect=aspect_of(prompt))
    return accept(sim, task)


@submit_route
async def change(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    action = text(body, "action", required=True)
    if action not in ("UPSCALE", "VARIATION", "REROLL"):
        raise Reject(4, "action must be UPSCALE, VARIATION or REROLL")
    index = body.get("index", 0 if action == "REROLL" else None)
    if not isinstance(index, int) or isinstance(index, bool) or (action != "REROLL" and not 1 <= index <= 4):
        raise Reject(4, "index must be an integer from 1 to 4")
    parent = find_parent(sim, body.get("taskId"))
    custom_id = change_custom_id(action, index, parent.hash)
    assert custom_id is not None
    return run_button(request, sim, body, parent, custom_id)


@submit_route
async def simple_change(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    content = text(body, "content", required=True)
    m = _SIMPLE_CHANGE.match(content)
    if m is None:
        raise Reject(4, 'content must look like "<taskId> U1" (U1-U4, V1-V4 or R)')
    parent = find_parent(sim, m.group(1))
    op = m.group(2).upper()
    action = {"U": "UPSCALE", "V": "VARIATION", "R": "REROLL"}[op[0]]
    custom_id = change_custom_id(action, int(op[1:] or 0), parent.hash)
    assert custom_id is not None
    return run_button(request, sim, body, parent, custom_id)


@submit_route
async def action(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    custom_id = text(body, "customId", required=True)
    parsed = parse_custom_id(custom_id)
    if parsed is None:
        raise Reject(4, f"unknown customId {custom_id!r}")
    task_id = body.get("taskId")
    parent = sim.store.get(task_id) if isinstance(task_id, str) and task_id else sim.store.by_hash(parsed.hash)
    if parent is None:
        raise Reject(3, f"task {task_id or parsed.hash} does not exist or has expired")
    return run_button(request, sim, body, parent, custom_id, parsed)


def run_button(
    request: web.Request,
    sim: Simulator,
    body: dict,
    parent: Task,
    custom_id: str,
    parsed: ParsedCustomId | None = None,
) -> web.Response:
    """Create the task a button of `parent` stands for."""
    parsed = parsed or parse_custom_id(custom_id)
    assert parsed is not None
    if parent.status != "SUCCESS":
        raise Reject(4, f"task {parent.id} is {parent.status}; buttons work on SUCCESS tasks only")
    own = parsed.for_hash(custom_id, parent.hash)
    if own not in {b["customId"] for b in parent.buttons}:
        raise Reject(4, f"customId {custom_id!r} is not a button of task {parent.id}")

    extra: dict[str, Any] = {}
    if parsed.action in ("UPSCALE", "VIDEO"):
        # An upscale shows one cell of its parent grid, or the same picture again.
        extra["render_seed"] = parent.render_seed
        extra["render_index"] = parent.render_index or parsed.index
    task = new_task(
        sim,
        request,
        {**body, "botType": parent.bot_type},
        parsed.action,
        parent.prompt,
        prompt_en=parent.prompt_en,
        final_prompt=parent.final_prompt,
        custom_id=own,
        parent_id=parent.id,
        aspect=parent.aspect,
        **extra,
    )
    if parsed.needs_modal:
        task.status = "MODAL"
        sim.store.register(task)
        return reply(21, "Waiting for window confirm", task.id, {"finalPrompt": task.prompt, "remix": False})
    return accept(sim, task)


@submit_route
async def modal(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    task = find_parent(sim, body.get("taskId"))
    if task.status != "MODAL":
        raise Reject(4, f"task {task.id} is {task.status}, not waiting for a modal")
    prompt = text(body, "prompt")
    check_banned(sim, prompt)
    if body.get("maskBase64"):
        decode_base64(body["maskBase64"], "maskBase64")
    if prompt is not None:
        task.prompt = task.prompt_en = task.final_prompt = prompt
    try:
        ahead = sim.store.admit(task)
    except QueueFull:
        raise Reject(23, "Queue is full, please try again later") from None
    return accepted_reply(task, ahead)


@submit_route
async def describe(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    if body.get("base64"):
        image = decode_base64(body["base64"], "base64")
    else:
        images = base64_list(body, "base64Array", 1, 5) if body.get("base64Array") else []
        if not images:
            raise Reject(4, "base64 or base64Array is required")
        image = images[0]
    task = new_task(sim, request, body, "DESCRIBE", "", upload=image)
    return accept(sim, task)


@submit_route
async def blend(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    images = base64_list(body, "base64Array", 2, 5)
    dimensions = text(body, "dimensions") or "SQUARE"
    if dimensions not in DIMENSIONS:
        raise Reject(4, f"dimensions must be one of {', '.join(DIMENSIONS)}")
    aspect = aspect_of("", dimensions)
    urls = [sim.add_attachment(data) for data in images]
    prompt = " ".join(urls) + f" --ar {aspect[0]}:{aspect[1]}"
    task = new_task(sim, request, body, "BLEND", prompt, aspect=aspect)
    return accept(sim, task)


@submit_route
async def shorten(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    prompt = text(body, "prompt", required=True)
    check_banned(sim, prompt)
    return accept(sim, new_task(sim, request, body, "SHORTEN", prompt))


@submit_route
async def video(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    motion = text(body, "motion") or "low"
    if motion not in ("low", "high"):
        raise Reject(4, "motion must be low or high")
    prompt = text(body, "prompt")
    check_banned(sim, prompt)
    if body.get("taskId"):
        parent = find_parent(sim, body["taskId"])
        if parent.status != "SUCCESS" or parent.image_kind is None:
            raise Reject(4, f"task {parent.id} has no finished image to animate")
        index = body.get("index", 1)
        if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= 4:
            raise Reject(4, "index must be an integer from 1 to 4")
        task = new_task(
            sim,
            request,
            body,
            "VIDEO",
            prompt or parent.prompt,
            parent_id=parent.id,
            aspect=parent.aspect,
            render_seed=parent.render_seed,
            render_index=parent.render_index or index,
        )
        return accept(sim, task)
    if prompt is None:
        raise Reject(4, "prompt or taskId is required")
    image = body.get("image") or body.get("base64")
    if image and not str(image).startswith(("http://", "https://")):
        decode_base64(image, "image")
    return accept(sim, new_task(sim, request, body, "VIDEO", prompt, aspect=aspect_of(prompt)))


@submit_route
async def edits(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    prompt = text(body, "prompt", required=True)
    check_banned(sim, prompt)
    image = body.get("image") or body.get("base64")
    if image:
        if not str(image).startswith(("http://", "https://")):
            decode_base64(image, "image")
    elif not base64_list(body, "base64Array", 0, 5):
        raise Reject(4, "image (URL or base64) or base64Array is required")
    if body.get("maskBase64"):
        decode_base64(body["maskBase64"], "maskBase64")
    return accept(sim, new_task(sim, request, body, "EDITS", prompt, aspect=aspect_of(prompt)))


@submit_route
async def swap_face(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    decode_base64(body.get("sourceBase64"), "sourceBase64")
    decode_base64(body.get("targetBase64"), "targetBase64")
    return accept(sim, new_task(sim, request, body, "SWAP_FACE", ""))


@submit_route
async def upload_images(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    images = base64_list(body, "base64Array", 1, 10)
    return reply(1, "success", [sim.add_attachment(data) for data in images])


SUBMIT_ROUTES = {
    "/mj/submit/imagine": imagine,
    "/mj/submit/change": change,
    "/mj/submit/simple-change": simple_change,
    "/mj/submit/action": action,
    "/mj/submit/modal": modal,
    "/mj/submit/describe": describe,
    "/mj/submit/blend": blend,
    "/mj/submit/shorten": shorten,
    "/mj/submit/video": video,
    "/mj/submit/edits": edits,
    "/mj/submit/upload-discord-images": upload_images,
    "/mj/insight-face/swap": swap_face,
}
