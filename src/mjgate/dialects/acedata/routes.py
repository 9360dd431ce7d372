"""AceData's face (SPEC §3.3, seed 003): POST /midjourney/imagine, /edits, /videos, /describe, /shorten,
/translate, /tasks, /seed. How it settles what AceData leaves open is in docs/api.md ("AceData-style API").

A dialect only: it parses the snake_case body, asks the task service, and renders the task in
AceData's shapes. The store, prices, channels and callbacks are the same as for /mj/...: a task
made here is visible there and the other way round.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from mjgate.api.deps import LimitedRelayCaller, public_base_url
from mjgate.api.idempotency import idempotency_of
from mjgate.api.payloads import MAX_SHORT_TEXT, image_base64, json_object, prompt_field, \
    redacted, text_field
from mjgate.api.routing import dialect_route, documented_body
from mjgate.dialects.acedata import fields, inputs
from mjgate.dialects.acedata.actions import ACTIONS, MODAL_ACTION, available_actions, button_for
from mjgate.dialects.acedata.render import DIALECT, answer_json, error_body, error_reply, item_json, result_json, \
    trace_id_of
from mjgate.dialects.acedata.requests import DescribeRequest, EditsRequest, ImagineRequest, SeedRequest, \
    ShortenRequest, TasksRequest, TranslateRequest, VideosRequest
from mjgate.errors import BadRequest, GatewayError, Kind, NotFound, RateLimited
from mjgate.models import Task
from mjgate.tasks import repository
from mjgate.tasks.actions import parse_custom_id
from mjgate.tasks.outcomes import NeedsModal, Outcome, Refused
from mjgate.tasks.submission import Caller, SubmitSpec

log = structlog.get_logger(__name__)

PREFIX = "/midjourney"
BATCH_LIMIT_DEFAULT = 20
BATCH_LIMIT_MAX = 100


def _links(request: Request):
    return request.app.state.links


def _base(request: Request) -> str:
    return public_base_url(request)


def refusal_error(outcome: Refused) -> GatewayError:
    """An upstream's refusal in AceData's terms (a refusing GatewayError keeps its own)."""
    if outcome.error is not None:
        return outcome.error
    message = outcome.message or "refused by the upstream"
    if outcome.kind in (Kind.INVALID, Kind.BANNED):
        return BadRequest(f"refused: {message}", kind=outcome.kind)
    if outcome.kind == Kind.QUEUE_FULL:
        return RateLimited(f"the upstream queue is full, try again later: {message}", kind=outcome.kind)
    return GatewayError(f"the upstream could not take the task: {message}", status=500, code="api_error",
                        kind=outcome.kind)


def _task_of(outcome: Outcome) -> Task:
    if isinstance(outcome, Refused):
        raise refusal_error(outcome)
    return outcome.task


async def _wait(request: Request, task: Task, timeout_s: float) -> Task | None:
    """The service's wait, abandoned early (None) if the client goes away."""
    waiter = asyncio.create_task(request.app.state.tasks.wait(task, timeout_s))

    async def gone() -> None:
        while not await request.is_disconnected():
            await asyncio.sleep(1.0)

    watcher = asyncio.create_task(gone())
    try:
        done, _ = await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not waiter.done():
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
    return waiter.result() if waiter in done else None


async def _final_answer(request: Request, task: Task) -> Response:
    links, base = _links(request), _base(request)
    if task.terminal and task.status != "SUCCESS":
        result = result_json(task, base, links)
        return error_body(request, 500, "api_error", result["error"]["message"], task_id=task.mj_id)
    size = await request.app.state.image_sizes.of(task)
    return JSONResponse(answer_json(task, base, links, size))


def _stream(request: Request, task: Task, delivery: fields.Delivery) -> StreamingResponse:
    links, base = _links(request), _base(request)
    lines: asyncio.Queue = asyncio.Queue()
    last: list[dict] = [answer_json(task, base, links)]

    async def on_change(changed: Task) -> None:
        line = answer_json(changed, base, links)
        if not changed.terminal and line != last[0]:
            last[0] = line
            await lines.put(line)

    async def produce() -> None:
        try:
            final = await request.app.state.tasks.wait(task, delivery.timeout_s, on_change=on_change)
            size = await request.app.state.image_sizes.of(final)
            await lines.put(answer_json(final, base, links, size))
        except Exception:
            log.exception("acedata stream failed", task=task.mj_id)
        finally:
            await lines.put(None)

    async def body():
        producer = asyncio.create_task(produce())
        try:
            yield json.dumps(last[0], ensure_ascii=False) + "\n"
            while (line := await lines.get()) is not None:
                yield json.dumps(line, ensure_ascii=False) + "\n"
        finally:
            producer.cancel()

    return StreamingResponse(body(), media_type=fields.NDJSON, headers={"Cache-Control": "no-cache",
                                                                        "X-Accel-Buffering": "no"})


async def _deliver(request: Request, task: Task, delivery: fields.Delivery) -> Response:
    if delivery.stream and not delivery.asynchronous:
        return _stream(request, task, delivery)
    if delivery.asynchronous or delivery.callback_url:
        # Progress reaches a callback_url through the task service's webhook outbox.
        return JSONResponse({"success": True, "task_id": task.mj_id, "trace_id": trace_id_of(request)})
    final = await _wait(request, task, delivery.timeout_s)
    if final is None:
        return Response(status_code=499)  # nobody is listening any more
    return await _final_answer(request, final)


def _spec(request: Request, client_body: dict, delivery: fields.Delivery, **spec_fields) -> SubmitSpec:
    return SubmitSpec(notify_hook=delivery.callback_url, request=redacted(client_body), dialect=DIALECT,
                      trace_id=trace_id_of(request), public_base=public_base_url(request),
                      idempotency=idempotency_of(request, client_body), **spec_fields)


async def _imagine_task(request: Request, caller: Caller, body: dict, delivery: fields.Delivery) -> Task:
    service = request.app.state.tasks
    action = text_field(body, "action").strip().lower() or "generate"
    if action not in ACTIONS:
        raise BadRequest(f"action {action[:64]!r} is not implemented; use one of: {', '.join(ACTIONS)}",
                         code="api_not_implemented")
    mode = fields.mode(body)
    fields.boolean(body, "split_images")  # checked here; the answer reads it from the stored request
    if action == "generate":
        prompt = fields.prompt_with_params(body, prompt_field(body))
        prompt_en = await inputs.english(request, body, prompt)
        sent, images = await inputs.own_image_prompts(request, prompt_en or prompt)
        return _task_of(await service.submit(caller, _spec(
            request, body, delivery, action="IMAGINE", operation="imagine",
            params={"prompt": sent, "base64Array": images, "botType": "MID_JOURNEY"}, prompt=prompt,
            prompt_en=prompt_en, mode=mode, explicit_mode=mode is not None)))

    ref = fields.id_field(body, "image_id", "task_id")
    if not ref:
        raise BadRequest(f"image_id is required for action {action}")
    mask = None
    if action == MODAL_ACTION:
        if not body.get("mask"):
            raise BadRequest("mask (a base64 image or data: URI; white marks the region to vary) is required "
                             "for variation_region")
        mask = image_base64(body["mask"], "mask")
    modal_prompt = prompt_field(body, required=False) if action == MODAL_ACTION else ""
    if modal_prompt:
        modal_prompt = await inputs.english(request, body, modal_prompt) or modal_prompt  # before any charge
    parent = await service.parent_of(caller, ref, what="image")
    custom_id = button_for(action, parent)
    if custom_id is None:
        offered = ", ".join(available_actions(parent)) or "none"
        raise BadRequest(f"action {action} is not available for image {parent.mj_id} (available: {offered})")
    outcome = await service.submit(caller, _spec(
        request, body, delivery, action=parse_custom_id(custom_id).action, operation="action",
        params={"customId": custom_id}, parent=parent, custom_id=custom_id, mode=mode, explicit_mode=mode is not None))
    if action == MODAL_ACTION and isinstance(outcome, NeedsModal):
        # Vary (Region) is two steps upstream (the button, then the modal with the mask); one call here.
        params = {"prompt": modal_prompt or parent.prompt, "maskBase64": mask}
        outcome = await service.modal(caller, outcome.task.mj_id, params)
    return _task_of(outcome)


async def _describe_image(request: Request, body: dict) -> str:
    image = await inputs.image_field(request, body, "image_url", also=("image_base64", "base64"))
    if image is None:
        raise BadRequest("image_url (or image_base64) is required")
    return image


VIDEO_TYPES = {"480p": "vid_1.1_i2v_480", "720p": "vid_1.1_i2v_720"}  # midjourney-proxy's videoType
VIDEO_ACTIONS = ("generate", "extend")
VIDEO_BATCH = 4  # AceData answers four clips


async def _edits_task(request: Request, caller: Caller, body: dict, delivery: fields.Delivery) -> Task:
    action = text_field(body, "action").strip().lower() or "generate"
    if action != "generate":
        raise BadRequest(f"action {action[:64]!r} is not implemented for edits; use generate",
                         code="api_not_implemented")
    mode = fields.mode(body)
    fields.boolean(body, "split_images")
    prompt = prompt_field(body)
    image = await inputs.image_field(request, body, "image_url", required=True, also=("image_base64",))
    params = {"prompt": prompt, "image": image}
    if body.get("mask"):
        params["maskBase64"] = image_base64(body["mask"], "mask")
    prompt_en = await inputs.english(request, body, prompt)
    params["prompt"] = prompt_en or prompt
    return _task_of(await request.app.state.tasks.submit(caller, _spec(
        request, body, delivery, action="EDITS", operation="edits", params=params, prompt=prompt,
        prompt_en=prompt_en, mode=mode, explicit_mode=mode is not None)))


async def _video_task(request: Request, caller: Caller, body: dict, delivery: fields.Delivery) -> Task:
    service = request.app.state.tasks
    action = text_field(body, "action").strip().lower() or "generate"
    if action not in VIDEO_ACTIONS:
        raise BadRequest(f"action {action[:64]!r} is not implemented for videos; use generate or extend",
                         code="api_not_implemented")
    mode = fields.mode(body)
    resolution = text_field(body, "resolution").strip().lower() or "480p"
    if resolution not in VIDEO_TYPES:
        raise BadRequest("resolution must be 480p or 720p")
    loop = fields.boolean(body, "loop")
    prompt = prompt_field(body, required=action == "generate")
    prompt_en = await inputs.english(request, body, prompt)
    params: dict = {"prompt": prompt_en or prompt, "videoType": VIDEO_TYPES[resolution], "batchSize": VIDEO_BATCH}
    if loop:
        params["loop"] = True
    end = await inputs.image_field(request, body, "end_image_url")
    if end is not None:
        params["endImage"] = end
    common = dict(action="VIDEO", operation="video", prompt_en=prompt_en, mode=mode, explicit_mode=mode is not None)
    if action == "generate":
        params["image"] = await inputs.image_field(request, body, "image_url", required=True)
        return _task_of(await service.submit(caller, _spec(request, body, delivery, params=params, prompt=prompt,
                                                           **common)))
    ref = fields.id_field(body, "video_id", "task_id")
    if not ref:
        raise BadRequest("video_id is required for action extend")
    parent = await service.parent_of(caller, ref, what="video")
    if parent.action != "VIDEO":
        raise BadRequest(f"{parent.mj_id} is not a video; only videos can be extended")
    clips = len(parent.video_urls or []) or VIDEO_BATCH
    index = fields.integer(body, "video_index", 0)
    if index >= clips:
        raise BadRequest(f"video_index must be from 0 to {clips - 1}")
    params.update(action="extend", index=index)
    return _task_of(await service.submit(caller, _spec(request, body, delivery, params=params, parent=parent,
                                                       prompt=prompt or None, **common)))


async def _retrieve(request: Request, caller: Caller, body: dict) -> dict:
    ref = fields.id_field(body, "id", "task_id")
    trace = fields.id_field(body, "trace_id")
    if not ref and not trace:
        raise BadRequest("id or trace_id is required")
    service = request.app.state.tasks
    if ref:
        task = await service.own(caller, ref)
    else:
        async with request.app.state.db.reading() as session:
            task = await repository.get_by_trace_id(session, trace, caller.user.id)
        if task is None:
            raise NotFound(f"no task with trace_id {trace}")
        await service.show_queue_positions([task])
    task = await service.refresh(task)
    item = item_json(task, _base(request), _links(request), await request.app.state.image_sizes.of(task))
    response = item["response"]
    # AceData's CLI reads success / image_url / error at the top level (see docs/api.md).
    return {**response, **item, "success": response.get("success", True), "trace_id": trace_id_of(request)}


async def _cancel(request: Request, caller: Caller, body: dict) -> dict:
    """Cancel a task: it ends CANCEL with its charge refunded; the answer is the task as retrieve shows it."""
    ref = fields.id_field(body, "id", "task_id")
    if not ref:
        raise BadRequest("id is required")
    task = await request.app.state.tasks.cancel(caller, ref)
    item = item_json(task, _base(request), _links(request))
    return {**item, "success": True, "trace_id": trace_id_of(request)}


async def _retrieve_batch(request: Request, caller: Caller, body: dict) -> dict:
    ids = fields.str_list(body, "ids")
    traces = fields.str_list(body, "trace_ids")
    offset = fields.integer(body, "offset", 0)
    limit = fields.integer(body, "limit", BATCH_LIMIT_DEFAULT, BATCH_LIMIT_MAX) or BATCH_LIMIT_DEFAULT
    async with request.app.state.db.reading() as session:
        if ids or traces:
            found = await repository.get_many_by_mj_ids(session, ids, caller.user.id)
            found += await repository.get_many_by_trace_ids(session, traces, caller.user.id)
            by_id = {t.mj_id: t for t in found}
            by_trace: dict[str, Task] = {}
            for t in sorted(found, key=lambda t: (t.submit_time, t.id), reverse=True):
                if t.trace_id:
                    by_trace.setdefault(t.trace_id, t)
            ordered = [by_id[i] for i in ids if i in by_id] + [by_trace[t] for t in traces if t in by_trace]
            ordered = list({t.mj_id: t for t in ordered}.values())
            total, page = len(ordered), ordered[offset:offset + limit]
        else:
            page, total = await repository.list_tasks(session, repository.TaskFilter(user_id=caller.user.id),
                                                      offset, limit)
    await request.app.state.tasks.show_queue_positions(page)
    sizes = await request.app.state.image_sizes.of_many(page)
    base, links = _base(request), _links(request)
    return {"items": [item_json(t, base, links, sizes.get(t.mj_id)) for t in page], "count": total,
            "trace_id": trace_id_of(request)}


def make_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["AceData-style API"], route_class=dialect_route(error_reply))

    @router.post("/imagine", summary="Generate or transform an image (AceData Midjourney Imagine)",
                 openapi_extra=documented_body(ImagineRequest))
    @router.post("/imagine/", include_in_schema=False)
    async def imagine(request: Request, caller: LimitedRelayCaller):
        body = await json_object(request)
        delivery = fields.delivery(request, body)
        task = await _imagine_task(request, caller, body, delivery)
        return await _deliver(request, task, delivery)

    @router.post("/describe", summary="Four prompts for an image (AceData Midjourney Describe)",
                 openapi_extra=documented_body(DescribeRequest))
    @router.post("/describe/", include_in_schema=False)
    async def describe(request: Request, caller: LimitedRelayCaller):
        body = await json_object(request)
        delivery = fields.delivery(request, body)
        mode = fields.mode(body)
        image = await _describe_image(request, body)
        outcome = await request.app.state.tasks.submit(caller, _spec(
            request, body, delivery, action="DESCRIBE", operation="describe", params={"base64": image},
            mode=mode, explicit_mode=mode is not None))
        return await _deliver(request, _task_of(outcome), delivery)

    @router.post("/edits", summary="Edit an image with a prompt and an optional mask (AceData Midjourney Edits)",
                 openapi_extra=documented_body(EditsRequest))
    @router.post("/edits/", include_in_schema=False)
    async def edits(request: Request, caller: LimitedRelayCaller):
        body = await json_object(request)
        delivery = fields.delivery(request, body)
        return await _deliver(request, await _edits_task(request, caller, body, delivery), delivery)

    @router.post("/videos", summary="Make or extend a video (AceData Midjourney Videos)",
                 openapi_extra=documented_body(VideosRequest))
    @router.post("/videos/", include_in_schema=False)
    async def videos(request: Request, caller: LimitedRelayCaller):
        body = await json_object(request)
        delivery = fields.delivery(request, body)
        return await _deliver(request, await _video_task(request, caller, body, delivery), delivery)

    @router.post("/shorten", summary="Five shorter prompts (AceData Midjourney Shorten)",
                 openapi_extra=documented_body(ShortenRequest))
    @router.post("/shorten/", include_in_schema=False)
    async def shorten(request: Request, caller: LimitedRelayCaller):
        body = await json_object(request)
        delivery = fields.delivery(request, body)
        mode = fields.mode(body)
        prompt = prompt_field(body)
        outcome = await request.app.state.tasks.submit(caller, _spec(
            request, body, delivery, action="SHORTEN", operation="shorten", params={"prompt": prompt},
            prompt=prompt, mode=mode, explicit_mode=mode is not None))
        return await _deliver(request, _task_of(outcome), delivery)

    @router.post("/translate", summary="A prompt in English (AceData Midjourney Translate)",
                 openapi_extra=documented_body(TranslateRequest))
    @router.post("/translate/", include_in_schema=False)
    async def translate(request: Request, caller: LimitedRelayCaller):
        body = await json_object(request)
        content = text_field(body, "content").strip()
        if not content:
            raise BadRequest("content is required")
        english = await request.app.state.translator.english(content)
        return {"success": True, "content": english, "trace_id": trace_id_of(request)}

    @router.post("/tasks", summary="Retrieve tasks (AceData Midjourney Tasks)", openapi_extra=documented_body(TasksRequest))
    @router.post("/tasks/", include_in_schema=False)
    async def tasks(request: Request, caller: LimitedRelayCaller):
        body = await json_object(request)
        action = text_field(body, "action", limit=64).strip().lower()
        if not action:
            action = "retrieve_batch" if body.get("ids") or body.get("trace_ids") else "retrieve"
        # JSONResponse: the answers are plain JSON already; FastAPI's pass over a returned dict costs more.
        if action == "retrieve":
            return JSONResponse(await _retrieve(request, caller, body))
        if action == "retrieve_batch":
            return JSONResponse(await _retrieve_batch(request, caller, body))
        if action == "cancel":
            return JSONResponse(await _cancel(request, caller, body))
        raise BadRequest(f"action {action!r} is not implemented; use retrieve, retrieve_batch or cancel",
                         code="api_not_implemented")

    @router.post("/seed", summary="The seed of a result (AceData Midjourney Seed)", openapi_extra=documented_body(SeedRequest))
    @router.post("/seed/", include_in_schema=False)
    async def seed(request: Request, caller: LimitedRelayCaller):
        body = await json_object(request)
        ref = fields.id_field(body, "image_id", "task_id")
        if not ref:
            raise BadRequest("image_id is required")
        service = request.app.state.tasks
        task = await service.own(caller, ref, what="image")
        return {"success": True, "image_id": task.mj_id, "seed": await service.seed(task),
                "trace_id": trace_id_of(request)}

    @router.post("/{name:path}", include_in_schema=False)
    async def not_implemented(name: str, request: Request, caller: LimitedRelayCaller):
        raise BadRequest(f"{PREFIX}/{name[:MAX_SHORT_TEXT]} is not implemented by this gateway",
                         code="api_not_implemented")

    return router


def webhook_payload(links):
    """What a task's callback_url receives on each visible change: this dialect's answer JSON."""
    return lambda task: answer_json(task, links.base_for(task), links)
