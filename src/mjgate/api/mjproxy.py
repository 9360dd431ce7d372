"""midjourney-proxy's face: /mj/submit/..., /mj/task/... (seed 004), also under /mj-{fast,relax,turbo}.

Submit routes always answer HTTP 200 with {code, description, result, properties}: clients branch
on `code`. Only a missing or bad key is an HTTP 401/403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from mjgate.api.deps import public_base_url
from mjgate.api.payloads import (
    MAX_SHORT_TEXT, http_url, image_base64, image_list, json_object, prompt_field, redacted, text_field,
)
from mjgate.auth.relay import authenticate
from mjgate.errors import BadRequest, GatewayError, NotFound
from mjgate.models import Task
from mjgate.tasks import repository
from mjgate.tasks.actions import parse_change, parse_custom_id, parse_simple_change
from mjgate.tasks.service import Caller, SubmitOutcome, SubmitSpec
from mjgate.tasks.views import mjproxy_task_json

MODES = ("fast", "relax", "turbo")
MAX_LIST_IDS = 1_000
RECENT_LIMIT = 100
_MJ_CODE = {"not_found": 3, "api_error": 9}


async def relay_caller(request: Request) -> Caller:
    # No session held into the endpoint: a submit opens write sessions later, and holding a
    # pooled connection across them would starve the pool under load.
    return await authenticate(request)


CallerDep = Annotated[Caller, Depends(relay_caller)]


def _mode(request: Request, default: str = "fast") -> tuple[str, bool]:
    first = request.url.path.split("/", 2)[1]
    if first.startswith("mj-") and first[3:] in MODES:
        return first[3:], True
    return default, False


def reply(code: int, description: str, result=None, properties: dict | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "description": description, "result": result, "properties": properties or {}})


def _error_reply(exc: GatewayError) -> JSONResponse:
    return reply(_MJ_CODE.get(exc.code, 4), exc.message)


def _outcome_reply(outcome: SubmitOutcome) -> JSONResponse:
    if outcome.task is None:
        return reply(outcome.code, outcome.description, outcome.result, outcome.properties)
    code = outcome.code
    description = outcome.description
    if code == 22:
        # Accepted but waiting: clients only know 1 as success, so report the queue in words.
        ahead = outcome.properties.get("numberOfQueues")
        code = 1
        if not description:
            description = f"In queue, {ahead} tasks ahead" if ahead is not None else "In queue"
    result = outcome.result if outcome.result is not None else outcome.task.mj_id
    return reply(code, description, result, outcome.properties)


def task_json(task: Task, request: Request) -> dict:
    state = request.app.state
    return mjproxy_task_json(task, public_base_url(request), state.secret_key, state.settings.image_url_ttl_s)


async def _own_task(request: Request, caller: Caller, mj_id: object, *, refresh: bool = False) -> Task:
    if not isinstance(mj_id, (str, int)) or isinstance(mj_id, bool) or not str(mj_id).strip():
        raise BadRequest("taskId is required")
    async with request.app.state.db.read() as session:
        task = await repository.get_by_mj_id(session, str(mj_id).strip()[:64])
    if task is None or task.user_id != caller.user.id:
        raise NotFound(f"task {str(mj_id)[:64]} not found")
    if refresh:
        task = await request.app.state.tasks.refresh(task)
    return task


async def _parent(request: Request, caller: Caller, mj_id: object) -> Task:
    parent = await _own_task(request, caller, mj_id, refresh=True)
    if parent.status != "SUCCESS":
        raise BadRequest(f"task {parent.mj_id} is {parent.status}: its buttons work once it has succeeded")
    return parent


def _common(request: Request, body: dict, caller_mode: tuple[str, bool], **fields) -> dict:
    mode, explicit = caller_mode
    return dict(
        mode=mode, explicit_mode=explicit, state=text_field(body, "state"),
        notify_hook=http_url(body, "notifyHook"), request=redacted(body), public_base=public_base_url(request),
        **fields,
    )


async def _submit(request: Request, caller: Caller, build) -> JSONResponse:
    """Parse with `build(body) -> SubmitSpec`, submit, and answer in midjourney-proxy's shape."""
    try:
        body = await json_object(request)
        spec = await build(body)
        outcome = await request.app.state.tasks.submit(caller, spec)
    except GatewayError as exc:
        return _error_reply(exc)
    return _outcome_reply(outcome)


def make_router() -> APIRouter:
    router = APIRouter(tags=["midjourney-proxy"])

    @router.post("/mj/submit/imagine")
    async def imagine(request: Request, caller: CallerDep):
        async def build(body):
            bot = text_field(body, "botType") or "MID_JOURNEY"
            if bot not in ("MID_JOURNEY", "NIJI_JOURNEY"):
                raise BadRequest("botType must be MID_JOURNEY or NIJI_JOURNEY")
            images = image_list(body, "base64Array", minimum=0, maximum=5)
            prompt = prompt_field(body)
            upstream = {"prompt": prompt, "base64Array": images, "botType": bot}
            return SubmitSpec(action="IMAGINE", path="/submit/imagine", body=upstream, prompt=prompt, bot_type=bot,
                              **_common(request, body, _mode(request)))
        return await _submit(request, caller, build)

    async def _button(request: Request, caller: Caller, body: dict, parent_ref, action, upstream_path, upstream_body):
        parent = await _parent(request, caller, parent_ref)
        return SubmitSpec(action=action.action, path=upstream_path, body=upstream_body, parent=parent,
                          prompt=parent.prompt, bot_type=parent.bot_type,
                          **_common(request, body, _mode(request, parent.mode)))

    @router.post("/mj/submit/change")
    async def change(request: Request, caller: CallerDep):
        async def build(body):
            action = parse_change(body.get("action"), body.get("index"))
            upstream = {"taskId": "{task}", "action": action.action, **({"index": action.index} if action.index else {})}
            return await _button(request, caller, body, body.get("taskId"), action, "/submit/change", upstream)
        return await _submit(request, caller, build)

    @router.post("/mj/submit/simple-change")
    async def simple_change(request: Request, caller: CallerDep):
        async def build(body):
            task_ref, action = parse_simple_change(body.get("content"))
            op = "R" if action.action == "REROLL" else f"{action.action[0]}{action.index}"
            return await _button(request, caller, body, task_ref, action, "/submit/simple-change",
                                 {"content": "{task} " + op})
        return await _submit(request, caller, build)

    @router.post("/mj/submit/action")
    async def action(request: Request, caller: CallerDep):
        async def build(body):
            custom_id = text_field(body, "customId", required=True, limit=MAX_SHORT_TEXT)
            action = parse_custom_id(custom_id)
            parent = await _parent(request, caller, body.get("taskId"))
            if parent.buttons and custom_id not in {b.get("customId") for b in parent.buttons}:
                raise BadRequest(f"customId is not one of task {parent.mj_id}'s buttons")
            return SubmitSpec(action=action.action, path="/submit/action",
                              body={"taskId": "{task}", "customId": custom_id}, parent=parent, prompt=parent.prompt,
                              bot_type=parent.bot_type, **_common(request, body, _mode(request, parent.mode)))
        return await _submit(request, caller, build)

    @router.post("/mj/submit/modal")
    async def modal(request: Request, caller: CallerDep):
        try:
            body = await json_object(request)
            task = await _own_task(request, caller, body.get("taskId"))
            upstream = {"prompt": prompt_field(body, required=False)}
            if body.get("maskBase64"):
                upstream["maskBase64"] = image_base64(body["maskBase64"], "maskBase64")
            outcome = await request.app.state.tasks.submit_modal(caller, task, upstream)
        except GatewayError as exc:
            return _error_reply(exc)
        return _outcome_reply(outcome)

    @router.post("/mj/submit/describe")
    async def describe(request: Request, caller: CallerDep):
        async def build(body):
            if body.get("base64"):
                image = image_base64(body["base64"], "base64")
            else:
                images = image_list(body, "base64Array", minimum=1, maximum=1)
                image = images[0]
            return SubmitSpec(action="DESCRIBE", path="/submit/describe", body={"base64": image},
                              **_common(request, body, _mode(request)))
        return await _submit(request, caller, build)

    @router.post("/mj/submit/blend")
    async def blend(request: Request, caller: CallerDep):
        async def build(body):
            images = image_list(body, "base64Array", minimum=2, maximum=5)
            dimensions = text_field(body, "dimensions") or "SQUARE"
            if dimensions not in ("PORTRAIT", "SQUARE", "LANDSCAPE"):
                raise BadRequest("dimensions must be PORTRAIT, SQUARE or LANDSCAPE")
            return SubmitSpec(action="BLEND", path="/submit/blend", body={"base64Array": images, "dimensions": dimensions},
                              **_common(request, body, _mode(request)))
        return await _submit(request, caller, build)

    @router.post("/mj/submit/shorten")
    async def shorten(request: Request, caller: CallerDep):
        async def build(body):
            prompt = prompt_field(body)
            return SubmitSpec(action="SHORTEN", path="/submit/shorten", body={"prompt": prompt}, prompt=prompt,
                              **_common(request, body, _mode(request)))
        return await _submit(request, caller, build)

    @router.post("/mj/submit/video")
    async def video(request: Request, caller: CallerDep):
        async def build(body):
            prompt = prompt_field(body, required=False)
            upstream = {k: body[k] for k in ("motion", "action", "index", "noStorage", "videoType") if k in body}
            upstream["prompt"] = prompt
            if body.get("image"):
                upstream["image"] = image_base64(body["image"], "image")
            if body.get("taskId"):
                parent = await _parent(request, caller, body["taskId"])
                return SubmitSpec(action="VIDEO", path="/submit/video", body={**upstream, "taskId": "{task}"},
                                  parent=parent, prompt=prompt or parent.prompt,
                                  **_common(request, body, _mode(request, parent.mode)))
            if not prompt and "image" not in upstream:
                raise BadRequest("a video needs a prompt, an image or a taskId")
            return SubmitSpec(action="VIDEO", path="/submit/video", body=upstream, prompt=prompt,
                              **_common(request, body, _mode(request)))
        return await _submit(request, caller, build)

    @router.post("/mj/submit/edits")
    async def edits(request: Request, caller: CallerDep):
        async def build(body):
            prompt = prompt_field(body)
            upstream = {"prompt": prompt, "image": image_base64(body.get("image"), "image")}
            if body.get("maskBase64"):
                upstream["maskBase64"] = image_base64(body["maskBase64"], "maskBase64")
            return SubmitSpec(action="EDITS", path="/submit/edits", body=upstream, prompt=prompt,
                              **_common(request, body, _mode(request)))
        return await _submit(request, caller, build)

    @router.post("/mj/submit/upload-discord-images")
    async def upload(request: Request, caller: CallerDep):
        async def build(body):
            images = image_list(body, "base64Array", minimum=1, maximum=10)
            return SubmitSpec(action="UPLOAD", path="/submit/upload-discord-images", body={"base64Array": images},
                              **_common(request, body, _mode(request)))
        return await _submit(request, caller, build)

    @router.post("/mj/insight-face/swap")
    async def swap_face(request: Request, caller: CallerDep):
        async def build(body):
            upstream = {"sourceBase64": image_base64(body.get("sourceBase64"), "sourceBase64"),
                        "targetBase64": image_base64(body.get("targetBase64"), "targetBase64")}
            return SubmitSpec(action="SWAP_FACE", path="/insight-face/swap", body=upstream,
                              **_common(request, body, _mode(request)))
        return await _submit(request, caller, build)

    # ------------------------------------------------------------------ reads

    @router.get("/mj/task/{task_id}/fetch")
    async def fetch(task_id: str, request: Request, caller: CallerDep):
        task = await _own_task(request, caller, task_id, refresh=True)
        return JSONResponse(task_json(task, request))

    @router.post("/mj/task/list-by-condition")
    async def list_by_condition(request: Request, caller: CallerDep):
        body = await json_object(request)
        ids = body.get("ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
            raise BadRequest("ids must be an array of task ids")
        if len(ids) > MAX_LIST_IDS:
            raise BadRequest(f"at most {MAX_LIST_IDS} ids per call")
        async with request.app.state.db.read() as session:
            tasks = await repository.get_many_by_mj_ids(session, [str(i) for i in ids], caller.user.id)
        by_id = {t.mj_id: t for t in tasks}
        ordered = [by_id[str(i)] for i in dict.fromkeys(str(i) for i in ids) if str(i) in by_id]
        # JSONResponse directly: the plain dicts need none of FastAPI's per-value encoding pass.
        return JSONResponse([task_json(t, request) for t in ordered])

    @router.get("/mj/task/list")
    async def recent(request: Request, caller: CallerDep):
        async with request.app.state.db.read() as session:
            tasks, _ = await repository.list_tasks(session, repository.TaskFilter(user_id=caller.user.id), 0, RECENT_LIMIT)
        return JSONResponse([task_json(t, request) for t in tasks])

    @router.get("/mj/task/{task_id}/image-seed")
    async def image_seed(task_id: str, request: Request, caller: CallerDep):
        task = await _own_task(request, caller, task_id)
        try:
            answer = await request.app.state.tasks.image_seed(task)
        except GatewayError as exc:
            return _error_reply(exc)
        return answer

    return router


def install(app) -> None:
    router = make_router()
    app.include_router(router)
    for mode in MODES:
        app.include_router(router, prefix=f"/mj-{mode}", include_in_schema=False)
