"""new-api's shapes: the task item of /api/mj listings (seeds 000-002) and its error envelope."""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import JSONResponse

from mjgate.api.deps import public_base_url
from mjgate.errors import GatewayError
from mjgate.models import Task


def ms_to_s(value: int | None) -> int:
    return (value or 0) // 1000


def task_item(task: Task, request: Request, *, admin: bool, username: str | None = None,
              base_url: str | None = None) -> dict:
    """`base_url`: the gateway's public base for image links (computed once per page by the caller)."""
    links = request.app.state.links
    item = {
        "id": task.id,
        "mj_id": task.mj_id,
        "action": task.action,
        "prompt": task.prompt,
        "prompt_en": task.prompt_en,
        "status": task.status,
        "progress": task.progress,
        "image_url": links.image_url(task, base_url or public_base_url(request)),
        "video_url": task.video_url,
        "video_urls": json.dumps(task.video_urls or [], ensure_ascii=False),
        "submit_time": ms_to_s(task.submit_time),
        "start_time": ms_to_s(task.start_time),
        "finish_time": ms_to_s(task.finish_time),
        "fail_reason": task.fail_reason,
        "quota": task.quota,
        "code": task.code,
        "description": task.description,
        "state": task.state,
        "mode": task.mode,
        "buttons": task.buttons or [],
        "properties": task.properties or {},
        "refunded": task.refunded_at is not None,
    }
    if username is not None:
        item["username"] = username
    if admin:
        item["user_id"] = task.user_id
        item["channel_id"] = task.channel_id
    return item


def error_reply(request: Request, exc: GatewayError) -> JSONResponse:
    headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
    return JSONResponse({"success": False, "message": exc.message}, status_code=exc.status, headers=headers)
