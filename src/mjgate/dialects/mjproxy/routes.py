"""midjourney-proxy's face: /mj/submit/..., /mj/task/... (seed 004), also under /mj-{fast,relax,turbo}.

Submit routes always answer HTTP 200 with {code, description, result, properties}: clients branch
on `code`. A missing or bad key is an HTTP 401/403, a rate-limited key 429, a read of an unknown
task 404 — each with the same body shape.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mjgate.api.deps import LimitedRelayCaller, RelayCaller, public_base_url
from mjgate.api.idempotency import idempotency_of
from mjgate.api.payloads import (
    MAX_SHORT_TEXT, form_or_json, http_url, image_base64, image_list, json_object, prompt_field, redacted, text_field,
)
from mjgate.api.routing import dialect_route, documented_body
from mjgate.dialects.mjproxy import requests as bodies
from mjgate.dialects.mjproxy.render import error_reply, outcome_reply, reply, task_json
from mjgate.errors import BadRequest, GatewayError
from mjgate.models import Task
from mjgate.tasks import repository
from mjgate.tasks.actions import parse_change, parse_custom_id, parse_simple_change
from mjgate.tasks.outcomes import Refused
from mjgate.tasks.submission import Caller, SubmitSpec

MODES = ("fast", "relax", "turbo")
MAX_LIST_IDS = 1_000
RECENT_LIMIT = 100
DIALECT = "mjproxy"


def _mode(request: Request) -> tuple[str | None, bool]:
    """The speed mode a /mj-{mode} prefix chose, if any (else the default, or the parent's)."""
    first = request.url.path.split("/", 2)[1]
    if first.startswith("mj-") and first[3:] in MODES:
        return first[3:], True
    return None, False


def _spec(request: Request, body: dict, *, action: str, operation: str, params: dict, **fields) -> SubmitSpec:
    mode, explicit = _mode(request)
    return SubmitSpec(action=action, operation=operation, params=params, mode=mode, explicit_mode=explicit,
                      state=text_field(body, "state"), notify_hook=http_url(body, "notifyHook"),
                      request=redacted(body), dialect=DIALECT, public_base=public_base_url(request),
                      idempotency=idempotency_of(request, body), **fields)


Build = Callable[[dict], SubmitSpec]


async def _submit(request: Request, caller: Caller, build: Build) -> JSONResponse:
    """Parse with `build(body) -> SubmitSpec`, submit, and answer in midjourney-proxy's shape."""
    try:
        spec = build(await json_object(request))
    except GatewayError as exc:
        return outcome_reply(Refused.of(exc))
    return outcome_reply(await request.app.state.tasks.submit(caller, spec))


async def _image_or_url(request: Request, body: dict, name: str) -> str:
    """An image as base64, or as an http(s) URL the upstream fetches itself. The gateway's own signed
    image URLs become base64 here (images/own.py): an upstream could not reach a private address."""
    value = body.get(name)
    if isinstance(value, str) and value.strip().lower().startswith(("http://", "https://")):
        url = http_url(body, name)
        own = await request.app.state.gateway_images.data_uri_of(url, str(request.base_url).rstrip("/"), name)
        return own or url
    return image_base64(value, name)


def _links(request: Request):
    return request.app.state.links


def render(task: Task, request: Request) -> dict:
    return task_json(task, public_base_url(request), _links(request))


def make_router() -> APIRouter:
    router = APIRouter(tags=["midjourney-proxy"], route_class=dialect_route(error_reply))

    def submit_route(path: str, model):
        return router.post(path, openapi_extra=documented_body(model))

    @submit_route("/mj/submit/imagine", bodies.ImagineRequest)
    async def imagine(request: Request, caller: LimitedRelayCaller):
        try:
            body = await json_object(request)
            bot = text_field(body, "botType") or "MID_JOURNEY"
            if bot not in ("MID_JOURNEY", "NIJI_JOURNEY"):
                raise BadRequest("botType must be MID_JOURNEY or NIJI_JOURNEY")
            images = image_list(body, "base64Array", minimum=0, maximum=5)
            prompt = prompt_field(body)
            # The gateway's own image URLs at the head of the prompt go upstream as base64 (images/own.py).
            sent, own = await request.app.state.gateway_images.own_prompt_images(
                prompt, str(request.base_url).rstrip("/"), 5 - len(images))
            spec = _spec(request, body, action="IMAGINE", operation="imagine",
                         params={"prompt": sent, "base64Array": images + own, "botType": bot}, prompt=prompt,
                         bot_type=bot)
        except GatewayError as exc:
            return outcome_reply(Refused.of(exc))
        return outcome_reply(await request.app.state.tasks.submit(caller, spec))

    @submit_route("/mj/submit/change", bodies.ChangeRequest)
    async def change(request: Request, caller: LimitedRelayCaller):
        def build(body):
            action = parse_change(body.get("action"), body.get("index"))
            params = {"action": action.action, **({"index": action.index} if action.index else {})}
            return _spec(request, body, action=action.action, operation="change", params=params,
                         parent_ref=body.get("taskId"))
        return await _submit(request, caller, build)

    @submit_route("/mj/submit/simple-change", bodies.SimpleChangeRequest)
    async def simple_change(request: Request, caller: LimitedRelayCaller):
        def build(body):
            task_ref, action = parse_simple_change(body.get("content"))
            op = "R" if action.action == "REROLL" else f"{action.action[0]}{action.index}"
            return _spec(request, body, action=action.action, operation="simple_change", params={"op": op},
                         parent_ref=task_ref)
        return await _submit(request, caller, build)

    @submit_route("/mj/submit/action", bodies.ActionRequest)
    async def action(request: Request, caller: LimitedRelayCaller):
        def build(body):
            custom_id = text_field(body, "customId", required=True, limit=MAX_SHORT_TEXT)
            return _spec(request, body, action=parse_custom_id(custom_id).action, operation="action",
                         params={"customId": custom_id}, parent_ref=body.get("taskId"), custom_id=custom_id)
        return await _submit(request, caller, build)

    @submit_route("/mj/submit/modal", bodies.ModalRequest)
    async def modal(request: Request, caller: LimitedRelayCaller):
        try:
            body = await json_object(request)
            params = {"prompt": prompt_field(body, required=False)}
            if body.get("maskBase64"):
                params["maskBase64"] = image_base64(body["maskBase64"], "maskBase64")
        except GatewayError as exc:
            return outcome_reply(Refused.of(exc))
        return outcome_reply(await request.app.state.tasks.modal(caller, body.get("taskId"), params))

    @submit_route("/mj/submit/describe", bodies.DescribeRequest)
    async def describe(request: Request, caller: LimitedRelayCaller):
        def build(body):
            if body.get("base64"):
                image = image_base64(body["base64"], "base64")
            else:
                image = image_list(body, "base64Array", minimum=1, maximum=1)[0]
            return _spec(request, body, action="DESCRIBE", operation="describe", params={"base64": image})
        return await _submit(request, caller, build)

    @submit_route("/mj/submit/blend", bodies.BlendRequest)
    async def blend(request: Request, caller: LimitedRelayCaller):
        def build(body):
            images = image_list(body, "base64Array", minimum=2, maximum=5)
            dimensions = text_field(body, "dimensions") or "SQUARE"
            if dimensions not in ("PORTRAIT", "SQUARE", "LANDSCAPE"):
                raise BadRequest("dimensions must be PORTRAIT, SQUARE or LANDSCAPE")
            return _spec(request, body, action="BLEND", operation="blend",
                         params={"base64Array": images, "dimensions": dimensions})
        return await _submit(request, caller, build)

    @submit_route("/mj/submit/shorten", bodies.ShortenRequest)
    async def shorten(request: Request, caller: LimitedRelayCaller):
        def build(body):
            prompt = prompt_field(body)
            return _spec(request, body, action="SHORTEN", operation="shorten", params={"prompt": prompt},
                         prompt=prompt)
        return await _submit(request, caller, build)

    @submit_route("/mj/submit/video", bodies.VideoRequest)
    async def video(request: Request, caller: LimitedRelayCaller):
        def build(body):
            prompt = prompt_field(body, required=False)
            params = {k: body[k] for k in ("motion", "action", "index", "noStorage", "videoType") if k in body}
            params["prompt"] = prompt
            if body.get("image"):
                params["image"] = image_base64(body["image"], "image")
            if body.get("taskId"):
                return _spec(request, body, action="VIDEO", operation="video", params=params,
                             parent_ref=body["taskId"], prompt=prompt or None)
            if not prompt and "image" not in params:
                raise BadRequest("a video needs a prompt, an image or a taskId")
            return _spec(request, body, action="VIDEO", operation="video", params=params, prompt=prompt)
        return await _submit(request, caller, build)

    @submit_route("/mj/submit/edits", bodies.EditsRequest)
    async def edits(request: Request, caller: LimitedRelayCaller):
        try:
            body = await json_object(request)
            prompt = prompt_field(body)
            params = {"prompt": prompt, "image": await _image_or_url(request, body, "image")}
            if body.get("maskBase64"):
                params["maskBase64"] = image_base64(body["maskBase64"], "maskBase64")
            spec = _spec(request, body, action="EDITS", operation="edits", params=params, prompt=prompt)
        except GatewayError as exc:
            return outcome_reply(Refused.of(exc))
        return outcome_reply(await request.app.state.tasks.submit(caller, spec))

    @submit_route("/mj/submit/retexture", bodies.RetextureRequest)
    async def retexture(request: Request, caller: LimitedRelayCaller):
        try:
            body = await json_object(request)
            prompt = prompt_field(body)
            image = await _image_or_url(request, body, "image")
            spec = _spec(request, body, action="RETEXTURE", operation="retexture",
                         params={"prompt": prompt, "image": image}, prompt=prompt)
        except GatewayError as exc:
            return outcome_reply(Refused.of(exc))
        return outcome_reply(await request.app.state.tasks.submit(caller, spec))

    @submit_route("/mj/insight-face/video-swap", bodies.VideoSwapRequest)
    async def video_swap(request: Request, caller: LimitedRelayCaller):
        try:
            body = await form_or_json(request)
            params = {}
            if body.get("sourceBase64"):
                params["sourceBase64"] = image_base64(body["sourceBase64"], "sourceBase64")
            elif body.get("sourceUrl"):
                face = await _image_or_url(request, body, "sourceUrl")
                params["sourceBase64" if face.startswith("data:") else "sourceUrl"] = face
            else:
                raise BadRequest("sourceBase64 or sourceUrl (the face image) is required")
            if isinstance(body.get("targetFile"), dict):
                params["targetFile"] = body["targetFile"]
            elif target := http_url(body, "targetUrl"):
                params["targetUrl"] = target
            else:
                raise BadRequest("targetFile (a file part of a multipart form) or targetUrl (the video) is required")
            spec = _spec(request, body, action="SWAP_VIDEO_FACE", operation="swap_video_face", params=params)
        except GatewayError as exc:
            return outcome_reply(Refused.of(exc))
        return outcome_reply(await request.app.state.tasks.submit(caller, spec))

    @submit_route("/mj/submit/upload-discord-images", bodies.UploadRequest)
    async def upload(request: Request, caller: LimitedRelayCaller):
        def build(body):
            images = image_list(body, "base64Array", minimum=1, maximum=10)
            return _spec(request, body, action="UPLOAD", operation="upload", params={"base64Array": images})
        return await _submit(request, caller, build)

    @submit_route("/mj/insight-face/swap", bodies.SwapFaceRequest)
    async def swap_face(request: Request, caller: LimitedRelayCaller):
        def build(body):
            params = {"sourceBase64": image_base64(body.get("sourceBase64"), "sourceBase64"),
                      "targetBase64": image_base64(body.get("targetBase64"), "targetBase64")}
            return _spec(request, body, action="SWAP_FACE", operation="swap_face", params=params)
        return await _submit(request, caller, build)

    # ------------------------------------------------------------------ reads

    @router.get("/mj/task/{task_id}/fetch")
    async def fetch(task_id: str, request: Request, caller: RelayCaller):
        task = await request.app.state.tasks.own(caller, task_id, refresh=True)
        return JSONResponse(render(task, request))

    @router.post("/mj/task/list-by-condition", openapi_extra=documented_body(bodies.ListByConditionRequest))
    async def list_by_condition(request: Request, caller: RelayCaller):
        body = await json_object(request)
        ids = body.get("ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
            raise BadRequest("ids must be an array of task ids")
        if len(ids) > MAX_LIST_IDS:
            raise BadRequest(f"at most {MAX_LIST_IDS} ids per call")
        wanted = list(dict.fromkeys(str(i) for i in ids))
        async with request.app.state.db.reading() as session:
            tasks = await repository.get_many_by_mj_ids(session, wanted, caller.user.id)
        await request.app.state.tasks.show_queue_positions(tasks)
        by_id = {t.mj_id: t for t in tasks}
        # JSONResponse directly: the plain dicts need none of FastAPI's per-value encoding pass.
        return JSONResponse([render(by_id[i], request) for i in wanted if i in by_id])

    @router.get("/mj/task/list")
    async def recent(request: Request, caller: RelayCaller):
        async with request.app.state.db.reading() as session:
            tasks, _ = await repository.list_tasks(session, repository.TaskFilter(user_id=caller.user.id), 0,
                                                   RECENT_LIMIT)
        return JSONResponse([render(t, request) for t in tasks])

    @router.post("/mj/task/{task_id}/cancel")
    async def cancel(task_id: str, request: Request, caller: RelayCaller):
        """Cancel the task (queued in the gateway: at once; else through its channel); refunded once.
        Answered like a submit: HTTP 200 and a code (1 cancelled, 4 not possible, 3 not found)."""
        try:
            task = await request.app.state.tasks.cancel(caller, task_id)
        except GatewayError as exc:
            return outcome_reply(Refused.of(exc))
        return reply(1, "Cancelled", task.mj_id, {"status": task.status})

    @router.get("/mj/task/{task_id}/image-seed")
    async def image_seed(task_id: str, request: Request, caller: RelayCaller):
        service = request.app.state.tasks
        task = await service.own(caller, task_id)
        try:
            seed = await service.seed(task)
        except GatewayError as exc:
            return outcome_reply(Refused.of(exc))
        return reply(1, "success", seed)

    return router


def webhook_payload(links) -> Callable[[Task], dict]:
    """What a task's notifyHook receives on each visible change: the fetch JSON."""
    return lambda task: task_json(task, links.base_for(task), links)


def install(app) -> None:
    router = make_router()
    app.include_router(router)
    for mode in MODES:
        app.include_router(router, prefix=f"/mj-{mode}", include_in_schema=False)

