"""The /mj/submit/* routes: validate, create a task, admit it to the executor.

Every answer is HTTP 200 with midjourney-proxy's `{code, description, result, properties}`;
a refusal is a code, never an HTTP error or a crash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .buttons import ParsedCustomId, change_custom_id, parse_custom_id
from .httputil import Upload, body_object, json_reply, read_json, split_mode
from .render import aspect_of
from .runtime import SIM, Simulator
from .state import QueueFull, Task

BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")
DIMENSIONS = ("PORTRAIT", "SQUARE", "LANDSCAPE")
_SIMPLE_CHANGE = re.compile(r"^\s*(\S+)\s+(U[1-4]|V[1-4]|R)\s*$", re.IGNORECASE)
_DATA_URL = re.compile(r"^data:[^,]*;base64,", re.IGNORECASE)
_PROMPT_MODE = re.compile(r"--(fast|relax|turbo)\b")
# English for midjourney-proxy's "排队中，前面还有N个任务" and "队列已满，请稍后尝试".
IN_QUEUE = "In queue, there are {ahead} tasks ahead"
QUEUE_FULL = "Queue is full, please try again later"
# midjourney-proxy (trueai-org) video options: videoType is the resolution, batchSize the clips.
VIDEO_TYPES = {"vid_1.1_i2v_480": "480p", "vid_1.1_i2v_720": "720p"}
VIDEO_BATCH_SIZES = (1, 2, 4)


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
    # The path prefix wins, then a --fast/--relax/--turbo flag, then the account's own mode.
    mode = split_mode(request.path)[0]
    if mode is None:
        flag = _PROMPT_MODE.search(prompt)
        mode = flag.group(1) if flag else request.app[SIM].config.default_mode
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


def refuse_queue_full(sim: Simulator) -> Reject:
    sim.stats["refused_queue_full"] += 1
    return Reject(23, QUEUE_FULL, {"discordInstanceId": "simulator"})


def accept(sim: Simulator, task: Task) -> web.Response:
    """Start or queue a new task (imagine, a button, a confirmed modal...) and answer 1, 22 or 23."""
    if sim.chance(sim.config.forget_rate):
        # Answer as if accepted, then never speak of it again: an upstream that lost the job.
        room = sim.store.room()
        if room == "full":
            raise refuse_queue_full(sim)
        sim.stats["forgotten"] += 1
        return accepted_reply(sim, task, None if room == "run" else sim.store.queued_count)
    return admit(sim, task)


def admit(sim: Simulator, task: Task) -> web.Response:
    try:
        ahead = sim.store.admit(task)
    except QueueFull:
        raise refuse_queue_full(sim) from None
    return accepted_reply(sim, task, ahead)


def accepted_reply(sim: Simulator, task: Task, ahead: int | None) -> web.Response:
    """Code 1 when it runs now, else 22 with `numberOfQueues`: the tasks waiting ahead of it.

    Like midjourney-proxy, running tasks are not counted, so the first waiting task hears 0;
    midjourney-proxy itself answers that one code 1, which `first_queued_success` reproduces.
    """
    props = {"discordInstanceId": "simulator"}
    if ahead is None or (ahead == 0 and sim.config.first_queued_success):
        return reply(1, "Submit success", task.id, props)
    props["numberOfQueues"] = ahead
    return reply(22, IN_QUEUE.format(ahead=ahead), task.id, props)


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
    if parsed.action == "VIDEO":
        extra["video_count"] = 4  # an Animate button makes a batch of four clips, as /submit/video does
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
    return admit(sim, task)  # a task already seen (MODAL) is never "forgotten"


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


def image_field(sim: Simulator, body: dict, name: str, required: bool = False) -> str | None:
    """An image given as a URL, a data URL or bare base64: the URL it can be seen at."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise Reject(4, f"{name} is required (an image URL or base64)")
        return None
    if not isinstance(value, str):
        raise Reject(4, f"{name} must be a string (an image URL or base64)")
    if value.strip().lower().startswith(("http://", "https://")):
        return value.strip()
    return sim.add_attachment(decode_base64(value, name))


def optional_bool(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):  # a form field
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise Reject(4, f"{name} must be true or false")
    return value


def optional_int(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():  # a form field
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Reject(4, f"{name} must be an integer")
    return value


@submit_route
async def video(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    """midjourney-proxy (trueai-org) /submit/video: a new video, or `action: "extend"` of one.

    Fields: prompt, motion (low|high), image (first frame, URL or base64), endImage (last frame),
    loop, videoType (vid_1.1_i2v_480 | vid_1.1_i2v_720), batchSize (1|2|4, default 4), and for
    extend taskId (a finished VIDEO) + index (0-3, which of its clips). A taskId without action
    animates cell `index` (1-4) of a finished image task, as the Animate buttons do.
    """
    motion = text(body, "motion") or "low"
    if motion not in ("low", "high"):
        raise Reject(4, "motion must be low or high")
    video_type = text(body, "videoType") or "vid_1.1_i2v_480"
    if video_type not in VIDEO_TYPES:
        raise Reject(4, f"videoType must be one of {', '.join(VIDEO_TYPES)}")
    batch = optional_int(body, "batchSize") or 4
    if batch not in VIDEO_BATCH_SIZES:
        raise Reject(4, "batchSize must be 1, 2 or 4")
    loop = optional_bool(body, "loop")
    op = text(body, "action")
    if op is not None and op != "extend":
        raise Reject(4, 'action must be "extend" (or absent)')
    prompt = text(body, "prompt")
    check_banned(sim, prompt)
    first = image_field(sim, body, "image") or image_field(sim, body, "base64")
    last = image_field(sim, body, "endImage")
    clips = {"video_count": batch, "video_resolution": VIDEO_TYPES[video_type], "video_loop": loop}
    echo = {"videoType": video_type, "batchSize": batch, "loop": loop, "motion": motion}

    if body.get("taskId"):
        parent = find_parent(sim, body["taskId"])
        index = optional_int(body, "index")
        if op == "extend":
            if parent.action != "VIDEO" or parent.status != "SUCCESS":
                raise Reject(4, f"task {parent.id} is not a finished video; only videos can be extended")
            index = 0 if index is None else index
            if not 0 <= index < parent.video_count:
                raise Reject(4, f"index must be an integer from 0 to {parent.video_count - 1}")
            seed, cell = f"{parent.render_seed}|extend{index}", parent.render_index
        else:
            if parent.status != "SUCCESS" or parent.image_kind is None:
                raise Reject(4, f"task {parent.id} has no finished image to animate")
            index = 1 if index is None else index
            if not 1 <= index <= 4:
                raise Reject(4, "index must be an integer from 1 to 4")
            seed, cell = parent.render_seed, parent.render_index or index
        task = new_task(
            sim, request, body, "VIDEO", prompt or parent.prompt, parent_id=parent.id, aspect=parent.aspect,
            render_seed=seed, render_index=cell, extra_properties={**echo, "index": index}, **clips,
        )
        return accept(sim, task)
    if op == "extend":
        raise Reject(4, "taskId is required to extend a video")
    if prompt is None:
        raise Reject(4, "prompt is required")
    final = " ".join(u for u in (first, prompt) if u)
    if last:
        echo["endImage"] = last
    task = new_task(sim, request, body, "VIDEO", prompt, final_prompt=final, aspect=aspect_of(prompt),
                    extra_properties=echo, **clips)
    return accept(sim, task)


def _image_job(action: str):
    """/submit/edits and /submit/retexture: a prompt and an image (URL or base64) give a grid."""

    async def handle(request: web.Request, sim: Simulator, body: dict) -> web.Response:
        prompt = text(body, "prompt", required=True)
        check_banned(sim, prompt)
        url = image_field(sim, body, "image") or image_field(sim, body, "base64")
        if url is None:
            # The simulator's older edits took base64Array; midjourney-proxy wants `image`.
            images = base64_list(body, "base64Array", 0, 5)
            if not images:
                raise Reject(4, "image (URL or base64) and prompt are required")
            url = sim.add_attachment(images[0])
        if body.get("maskBase64"):
            decode_base64(body["maskBase64"], "maskBase64")
        task = new_task(sim, request, body, action, prompt, final_prompt=f"{url} {prompt}", aspect=aspect_of(prompt))
        return accept(sim, task)

    handle.__name__ = action.lower()
    return submit_route(handle)


# midjourney-proxy (trueai-org) names these jobs EDIT and RETEXTURE.
edits = _image_job("EDIT")
retexture = _image_job("RETEXTURE")


@submit_route
async def swap_face(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    decode_base64(body.get("sourceBase64"), "sourceBase64")
    decode_base64(body.get("targetBase64"), "targetBase64")
    return accept(sim, new_task(sim, request, body, "SWAP_FACE", ""))


@submit_route
async def video_swap(request: web.Request, sim: Simulator, body: dict) -> web.Response:
    """/mj/insight-face/video-swap (trueai-org): a face onto every frame of a video.

    midjourney-proxy binds it from a form ([FromForm]): sourceBase64 or sourceUrl (the face),
    targetFile (the video, a file part) or targetUrl. A JSON body is refused with 415, as ASP.NET
    refuses it there.
    """
    if request.content_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return web.json_response({"title": "Unsupported Media Type", "status": 415}, status=415)
    source = body.get("sourceBase64") or body.get("sourceUrl")
    if not source:
        raise Reject(4, "sourceBase64 or sourceUrl (the face image) is required")
    face = image_field(sim, body, "sourceBase64" if body.get("sourceBase64") else "sourceUrl")
    target = body.get("targetFile")
    if isinstance(target, Upload):
        if not target.data:
            raise Reject(4, "targetFile is empty")
        seed = hashlib.sha256(target.data).hexdigest()[:16]
    elif target is not None:
        raise Reject(4, "targetFile must be a file part of a multipart/form-data body")
    else:
        url = text(body, "targetUrl")
        if url is None:
            raise Reject(4, "targetFile or targetUrl (the video) is required")
        if not url.lower().startswith(("http://", "https://")):
            raise Reject(4, "targetUrl must be an http(s) URL")
        seed = url
    task = new_task(
        sim, request, {**body, "botType": None}, "SWAP_VIDEO_FACE", "", bot_type="INSIGHT_FACE",
        render_seed=f"{face}|{seed}", render_index=1, video_count=1,
    )
    return accept(sim, task)


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
    "/mj/submit/edit": edits,  # trueai-org answers both spellings
    "/mj/submit/retexture": retexture,
    "/mj/submit/upload-discord-images": upload_images,
    "/mj/insight-face/swap": swap_face,
    "/mj/insight-face/video-swap": video_swap,
}
