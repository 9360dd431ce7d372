"""Pieces of a task's public view shared by every dialect."""

from __future__ import annotations

from mjgate.images.signing import signed_image_path
from mjgate.models import Task


def has_image(task: Task) -> bool:
    return bool(task.image_url or task.stored_image)


def image_url_for(task: Task, base_url: str, secret_key: str, ttl_s: int) -> str:
    """The gateway's own signed image URL, or "" when the task has no image (never a dead link)."""
    if not has_image(task):
        return ""
    return base_url + signed_image_path(secret_key, task.mj_id, ttl_s)


def ms_to_s(value: int | None) -> int:
    return (value or 0) // 1000


def mjproxy_task_json(task: Task, base_url: str, secret_key: str, ttl_s: int) -> dict:
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
        "imageUrl": image_url_for(task, base_url, secret_key, ttl_s),
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
