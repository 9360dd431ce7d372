"""AceData's shapes (seed 003): the imagine/describe answer, the retrieve item, the error envelope."""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.responses import JSONResponse

from mjgate.dialects.acedata.actions import available_actions, name_of
from mjgate.errors import GatewayError, Kind
from mjgate.images.grid import is_grid
from mjgate.images.links import Links
from mjgate.images.sizes import known_size
from mjgate.models import Task
from mjgate.tasks.actions import try_parse_custom_id

DIALECT = "acedata"
# (HTTP status, error code) by kind where AceData says it differently from the error itself.
ERROR_OF_KIND = {
    Kind.ACTION_NOT_ALLOWED: (400, "token_mismatched"),
    Kind.NO_CHANNEL: (500, "api_error"),
    Kind.UNAVAILABLE: (500, "api_error"),
    Kind.QUEUE_FULL: (429, "too_many_requests"),
    Kind.TOO_MANY_IN_FLIGHT: (429, "too_many_requests"),
    Kind.BANNED: (400, "bad_request"),
    Kind.RETRY_LATER: (503, "api_error"),
}


def trace_id_of(request: Request) -> str:
    return request.state.trace_id


# The retrieve item's `type`: the route a task of this action is made by.
TYPE_OF_ACTION = {"DESCRIBE": "describe", "EDITS": "edits", "VIDEO": "videos", "SHORTEN": "shorten"}
IMAGE_TYPES = ("imagine", "edits")  # results that are images, with an image_id to transform


def task_type(task: Task) -> str:
    return TYPE_OF_ACTION.get(task.action, "imagine")


def split_requested(task: Task) -> bool:
    value = (task.request or {}).get("split_images") if task.dialect == DIALECT else None
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes")) or value == 1


def progress_number(task: Task) -> int:
    if task.status == "SUCCESS":
        return 100
    digits = (task.progress or "").strip().rstrip("%").strip()
    try:
        return max(0, min(100, int(float(digits))))
    except ValueError:
        return 0


_NUMERAL = re.compile(r"^\s*(?:[0-9]\ufe0f?\u20e3|\d+\s*[.)、:]|[-*•])\s*")


def descriptions_of(task: Task) -> list[str]:
    """The four prompts of a DESCRIBE result: blank-line separated, keycap numerals stripped."""
    return _numbered_options(task.prompt or (task.properties or {}).get("finalPrompt") or "")[:4]


def shortened_prompts_of(task: Task) -> list[str]:
    """The five candidates of a SHORTEN result: midjourney-proxy keeps them in properties.finalPrompt
    and the description (the prompt stays as sent)."""
    text = (task.properties or {}).get("finalPrompt") or task.description or ""
    return _numbered_options(text if isinstance(text, str) else "")[:5]


def _numbered_options(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    if len(parts) == 1 and "\n" in parts[0]:
        parts = [p.strip() for p in parts[0].split("\n") if p.strip()]
    return [_NUMERAL.sub("", p, count=1).strip() for p in parts]


def result_json(task: Task, base_url: str, links: Links, size: tuple[int, int] | None = None) -> dict:
    """The task as AceData's imagine/describe answer; no `success` while it runs (see docs/api.md)."""
    kind = task_type(task)
    out: dict = {"task_id": task.mj_id}
    if task.trace_id:
        out["trace_id"] = task.trace_id
    if kind in IMAGE_TYPES:
        out["image_id"] = task.mj_id
    elif kind == "videos":
        out["video_id"] = task.mj_id
    out["progress"] = progress_number(task)
    if task.status == "SUCCESS":
        out["success"] = True
        if kind == "describe":
            out["descriptions"] = descriptions_of(task)
        elif kind == "shorten":
            out["prompts"] = shortened_prompts_of(task)
        else:
            url = links.image_url(task, base_url)
            if url:
                out["image_url"] = url
                out["raw_image_url"] = url
                size = size or known_size(task.properties or {})
                if size:
                    out["image_width"], out["image_height"] = size
                    out["raw_image_width"], out["raw_image_height"] = size
                if kind == "videos":
                    out["cover_image_url"] = url  # what AceData's CLI shows as the cover
                elif split_requested(task) and is_grid(task):
                    # sub_image_urls: the same four, under the name AceData's own clients read.
                    out["image_urls"] = out["sub_image_urls"] = links.part_urls(task, base_url)
            if task.video_urls:
                out["video_urls"] = list(task.video_urls)
            out["actions"] = available_actions(task)
    elif not task.terminal:
        # The upstream's intermediate picture, relayed by the gateway (not image_url: clients
        # take image_url as the result).
        if url := links.progress_image_url(task, base_url):
            out["progress_image_url"] = url
    else:
        out["success"] = False
        reason = task.fail_reason or ("the task was cancelled" if task.status == "CANCEL" else "the task failed")
        out["error"] = {"code": "api_error", "message": reason}
    return out


def answer_json(task: Task, base_url: str, links: Links, size: tuple[int, int] | None = None) -> dict:
    """An imagine/describe answer (and callback body): `success: true` while the task runs."""
    out = result_json(task, base_url, links, size)
    out.setdefault("success", True)
    return out


def _request_view(task: Task) -> dict:
    """The request as AceData shows it: ours as sent; a /mj task's described in AceData terms."""
    if task.dialect == DIALECT:
        return dict(task.request or {})
    view: dict = {"mode": task.mode}
    if task.action == "DESCRIBE":
        return view
    request = task.request or {}
    name = None
    if isinstance(request.get("customId"), str) and (button := try_parse_custom_id(request["customId"])):
        name = name_of(button)
    elif task.action in ("UPSCALE", "VARIATION") and str(request.get("index", "")).isdigit():
        name = f"{task.action.lower()}{request['index']}"
    view["action"] = name or ("generate" if task.action == "IMAGINE" else task.action.lower())
    if task.prompt:
        view["prompt"] = task.prompt
    return view


def _seconds(ms: int | None) -> float | None:
    return ms / 1000 if ms else None


def item_json(task: Task, base_url: str, links: Links, size: tuple[int, int] | None = None) -> dict:
    """A task as seed 003's retrieve item."""
    created = task.created_at or task.submit_time
    finished = task.finish_time if task.terminal else None
    item = {
        "id": task.mj_id,
        "type": task_type(task),
        "created_at": _seconds(created),
        "finished_at": _seconds(finished),
        "duration": max(0, finished - created) / 1000 if finished and created else None,
        "request": _request_view(task),
        "response": result_json(task, base_url, links, size),
    }
    if item["type"] in IMAGE_TYPES:
        item["image_id"] = task.mj_id
    elif item["type"] == "videos":
        item["video_id"] = task.mj_id
    if task.queued_at is not None:  # waiting in the gateway queue: how many are ahead
        item["queue_position"] = (task.properties or {}).get("numberOfQueues", 0)
    return item


def error_body(request: Request, status: int, code: str, message: str, **extra) -> JSONResponse:
    body = {"success": False, "error": {"code": code, "message": message}, "trace_id": trace_id_of(request), **extra}
    headers = {"X-Trace-Id": trace_id_of(request)}
    return JSONResponse(body, status_code=status, headers=headers)


def error_reply(request: Request, exc: GatewayError) -> JSONResponse:
    status, code = ERROR_OF_KIND.get(exc.kind, (exc.status, exc.code))
    if exc.kind == "internal":
        status, code = 500, "api_error"
    response = error_body(request, status, code, exc.message)
    if exc.retry_after:
        response.headers["Retry-After"] = exc.retry_after
    return response
