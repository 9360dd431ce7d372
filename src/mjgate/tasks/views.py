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
