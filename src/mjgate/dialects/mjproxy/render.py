"""midjourney-proxy's shapes: the task JSON, the submit answer, and its result codes."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from mjgate.errors import GatewayError, Kind
from mjgate.images.links import Links
from mjgate.models import Task
from mjgate.tasks.outcomes import Accepted, NeedsModal, Outcome, Refused, Uploaded

# midjourney-proxy result codes: clients branch on `code`, not on the HTTP status.
ACCEPTED = 1
NEEDS_MODAL = 21
QUEUED = 22  # waiting in the gateway's queue
CODE_OF_KIND = {Kind.BANNED: 24, Kind.NOT_FOUND: 3, Kind.NO_CHANNEL: 3, Kind.UNAVAILABLE: 9, Kind.QUEUE_FULL: 23,
                Kind.RETRY_LATER: 9, "internal": 9}
VALIDATION = 4  # everything else: invalid fields, quota, a key restricted to other actions, limits


def code_of(kind: str) -> int:
    return CODE_OF_KIND.get(kind, VALIDATION)


def task_json(task: Task, base_url: str, links: Links) -> dict:
    """A task as midjourney-proxy clients read it (fetch, list-by-condition, notifyHook)."""
    properties = task.properties or {}
    return {
        "id": task.mj_id,
        "action": task.action,
        "customId": (task.request or {}).get("customId", ""),
        "botType": task.bot_type,
        "mode": task.mode.upper(),
        "prompt": task.prompt,
        "promptEn": task.prompt_en,
        "description": task.description,
        "state": task.state,
        "submitTime": task.submit_time,
        "startTime": task.start_time,
        "finishTime": task.finish_time,
        "imageUrl": links.image_url(task, base_url),
        "videoUrl": task.video_url,
        "videoUrls": [{"url": u} for u in task.video_urls or []],
        "status": task.status,
        "progress": task.progress,
        "failReason": task.fail_reason,
        "buttons": task.buttons or [],
        "properties": {
            "finalPrompt": properties.get("finalPrompt", task.prompt_en),
            "finalZhPrompt": properties.get("finalZhPrompt", ""),
            **{k: v for k, v in properties.items() if k not in ("finalPrompt", "finalZhPrompt")},
        },
    }


def reply(code: int, description: str, result=None, properties: dict | None = None, status: int = 200,
          headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "description": description, "result": result, "properties": properties or {}},
                        status_code=status, headers=headers)


def outcome_reply(outcome: Outcome) -> JSONResponse:
    """Submit answers are HTTP 200 whatever the code: clients branch on `code`."""
    if isinstance(outcome, Refused):
        # An Idempotency-Key reused with another body is the one refusal with its own HTTP status (409).
        status = 409 if outcome.kind == Kind.KEY_REUSED else 200
        return reply(code_of(outcome.kind), outcome.message, None, outcome.properties, status=status)
    if isinstance(outcome, Uploaded):
        return reply(ACCEPTED, outcome.description, outcome.urls)
    if isinstance(outcome, NeedsModal):
        return reply(NEEDS_MODAL, outcome.description, outcome.task.mj_id)
    assert isinstance(outcome, Accepted)
    properties = dict(outcome.properties)
    description = outcome.description
    if outcome.queue_position is not None:
        properties["numberOfQueues"] = outcome.queue_position
        description = description or f"In queue, {outcome.queue_position} tasks ahead"
    # Waiting in the gateway's own queue is midjourney-proxy's 22; an upstream's queue stays 1 (the
    # task is already with its channel, and most clients only take 1 as success).
    return reply(QUEUED if outcome.queued else ACCEPTED, description, outcome.task.mj_id, properties)


def error_reply(request: Request, exc: GatewayError) -> JSONResponse:
    """Errors outside a submit (auth, reads): the HTTP status says it, and the body carries a code.

    A submit's bad input (refused before its route ran, e.g. by api/inputs) is answered like every
    other submit refusal: HTTP 200 with code 4, since these clients branch on `code` alone."""
    headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
    status = exc.status
    if exc.kind == Kind.INVALID and status in (400, 413) and "/submit/" in request.url.path:
        status = 200
    return reply(code_of(exc.kind), exc.message, status=status, headers=headers)
