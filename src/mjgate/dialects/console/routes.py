"""The console's task API: tasks by id (refreshed when stale), and submitting work as the logged-in user.

Submissions go through the same task service as the relay dialects, as Caller(user, key=None):
the console spends the user's balance directly, without an API key. Answers use new-api's
envelope; a refusal is `{"success": false, "message", "data": {"code"}}` with a fitting status.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mjgate.api.deps import public_base_url
from mjgate.api.idempotency import idempotency_of
from mjgate.api.payloads import image_base64, redacted
from mjgate.api.routing import dialect_route
from mjgate.dialects.console.csrf import ConsoleUser, csrf_guard, ok
from mjgate.dialects.mjproxy.render import NEEDS_MODAL, code_of
from mjgate.dialects.newapi.render import error_reply, task_item
from mjgate.errors import BadRequest, Forbidden, Kind
from mjgate.models import User
from mjgate.stats.repository import usernames_by_id
from mjgate.tasks import repository
from mjgate.tasks.actions import parse_custom_id
from mjgate.tasks.outcomes import Accepted, NeedsModal, Outcome, Refused
from mjgate.tasks.submission import Caller, SubmitSpec

router = APIRouter(prefix="/api/console", tags=["console"], route_class=dialect_route(error_reply))

MAX_REFRESH_IDS = 50
MAX_PROMPT_CHARS = 8_192
# HTTP status of an upstream refusal (no error status of its own), by kind.
REFUSAL_STATUS = {Kind.NO_CHANNEL: 503, Kind.UNAVAILABLE: 502, Kind.QUEUE_FULL: 503, Kind.BANNED: 400,
                  Kind.INVALID: 400}


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, strict=True)


class ImagineBody(_Body):
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT_CHARS)
    mode: Literal["fast", "relax", "turbo"] = "fast"
    bot_type: Literal["MID_JOURNEY", "NIJI_JOURNEY"] = "MID_JOURNEY"
    images: list[str] = Field(default_factory=list, max_length=5,
                              description="Reference images: base64 or data: URIs.")


class ActionBody(_Body):
    task_id: str = Field(..., min_length=1, max_length=64)
    custom_id: str = Field(..., min_length=1, max_length=2048)


class ModalBody(_Body):
    task_id: str = Field(..., min_length=1, max_length=64)
    prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    mask: str | None = Field(None, description="base64 mask for Vary (Region)")


@router.get("/tasks", summary="Current state of some tasks, refreshed from their channel when stale")
async def tasks_by_id(request: Request, user: ConsoleUser,
                      ids: Annotated[str, Query(max_length=MAX_REFRESH_IDS * 40)] = ""):
    wanted = list(dict.fromkeys(i.strip() for i in ids.split(",") if i.strip()))
    if not wanted:
        raise BadRequest("ids is required: a comma-separated list of task ids")
    if len(wanted) > MAX_REFRESH_IDS:
        raise BadRequest(f"at most {MAX_REFRESH_IDS} ids per call")
    async with request.app.state.db.reading() as session:
        found = await repository.get_many_by_mj_ids(session, [i[:64] for i in wanted],
                                                    None if user.is_admin else user.id)
    service = request.app.state.tasks
    await service.show_queue_positions(found)
    items = [task_item(await service.refresh(task), request, admin=user.is_admin) for task in found]
    return ok({"items": items})


@router.get("/tasks/{mj_id}", summary="One task, refreshed from its channel when stale")
async def task_detail(mj_id: str, request: Request, user: ConsoleUser):
    task = await request.app.state.tasks.own(Caller(user, None), mj_id, admin_sees_all=True, refresh=True)
    async with request.app.state.db.reading() as conn:
        names = await usernames_by_id(conn, {task.user_id})
    item = task_item(task, request, admin=user.is_admin, username=names.get(task.user_id, ""))
    item["owned"] = task.user_id == user.id
    return ok(item)


@router.post("/tasks/{mj_id}/cancel", summary="Cancel a task (the owner's, or any for an admin); refunded once",
             dependencies=[Depends(csrf_guard)])
async def cancel_task(mj_id: str, request: Request, user: ConsoleUser):
    task = await request.app.state.tasks.cancel(Caller(user, None), mj_id, admin_sees_all=True)
    return ok(task_item(task, request, admin=user.is_admin), message="Cancelled")


def _answer(request: Request, user: User, outcome: Outcome) -> JSONResponse:
    if isinstance(outcome, Refused):
        return JSONResponse(
            {"success": False, "message": outcome.message, "data": {"code": code_of(outcome.kind)}},
            status_code=outcome.status or REFUSAL_STATUS.get(outcome.kind, 400),
        )
    assert isinstance(outcome, (Accepted, NeedsModal))
    # 21: the task waits for a modal (a prompt or a mask) before the upstream starts it.
    code = NEEDS_MODAL if isinstance(outcome, NeedsModal) else 1
    data = {"code": code, "description": outcome.description, "mj_id": outcome.task.mj_id,
            "task": task_item(outcome.task, request, admin=user.is_admin)}
    return ok(data, message=outcome.description)


def _spec(request: Request, *, sent: dict, mode: str | None, **fields) -> SubmitSpec:
    return SubmitSpec(mode=mode, explicit_mode=mode not in (None, "fast"), request=redacted(sent),
                      dialect="console", public_base=public_base_url(request),
                      idempotency=idempotency_of(request, sent), **fields)


async def _own_for_pressing(request: Request, user: User, mj_id: str):
    """Admins see everyone's tasks, but a follow-up is charged to the presser: only the owner may act."""
    task = await request.app.state.tasks.own(Caller(user, None), mj_id, admin_sees_all=True)
    if task.user_id != user.id:
        raise Forbidden("only the task's owner can press its buttons")
    return task


@router.post("/submit/imagine", summary="Submit an Imagine as the logged-in user",
             dependencies=[Depends(csrf_guard)])
async def submit_imagine(request: Request, body: ImagineBody, user: ConsoleUser):
    images = [image_base64(value, f"images[{i}]") for i, value in enumerate(body.images)]
    params = {"prompt": body.prompt, "base64Array": images, "botType": body.bot_type}
    spec = _spec(request, sent=body.model_dump(), mode=body.mode, action="IMAGINE", operation="imagine",
                 params=params, prompt=body.prompt, bot_type=body.bot_type)
    return _answer(request, user, await request.app.state.tasks.submit(Caller(user, None), spec))


@router.post("/submit/action", summary="Press one of a task's buttons (U1, V2, zoom, pan, ...)",
             dependencies=[Depends(csrf_guard)])
async def submit_action(request: Request, body: ActionBody, user: ConsoleUser):
    action = parse_custom_id(body.custom_id)
    await _own_for_pressing(request, user, body.task_id)
    spec = _spec(request, sent=body.model_dump(), mode=None, action=action.action, operation="action",
                 params={"customId": body.custom_id}, parent_ref=body.task_id, custom_id=body.custom_id)
    return _answer(request, user, await request.app.state.tasks.submit(Caller(user, None), spec))


@router.post("/submit/modal", summary="Continue a task waiting for a modal (Custom Zoom, Vary Region)",
             dependencies=[Depends(csrf_guard)])
async def submit_modal(request: Request, body: ModalBody, user: ConsoleUser):
    await _own_for_pressing(request, user, body.task_id)
    params: dict = {"prompt": body.prompt}
    if body.mask:
        params["maskBase64"] = image_base64(body.mask, "mask")
    return _answer(request, user, await request.app.state.tasks.modal(Caller(user, None), body.task_id, params))
