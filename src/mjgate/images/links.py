"""Absolute, signed image URLs handed to clients, and the base URL they are built on."""

from __future__ import annotations

from dataclasses import dataclass

from mjgate.images.signing import signed_image_path
from mjgate.models import Task


def has_image(task: Task) -> bool:
    return bool(task.image_url or task.stored_image)


@dataclass(frozen=True)
class Links:
    secret_key: str  # the key new image URLs are signed with (the keyring's image-url key)
    ttl_s: int
    public_url: str | None = None  # MJGATE_PUBLIC_URL; else the URL the client called
    accepted_keys: tuple[str, ...] = ()  # keys a presented URL may be signed with (default: secret_key)

    def verify_keys(self) -> tuple[str, ...]:
        return self.accepted_keys or (self.secret_key,)

    def base_for(self, task: Task | None = None, request_base: str | None = None) -> str:
        """The base of URLs in an answer (the request's) or a callback sent later (the task's)."""
        return (self.public_url or request_base or (task.public_base if task is not None else "") or "").rstrip("/")

    def image_url(self, task: Task, base_url: str) -> str:
        """The gateway's own signed image URL, or "" when the task has no image (never a dead link).

        While the task runs, the image is the upstream's intermediate picture (relayed, never
        stored): its URL names the progress step, so no cache shows an older step or keeps a
        blurred picture in place of the result."""
        if not has_image(task):
            return ""
        url = base_url + signed_image_path(self.secret_key, task.mj_id, self.ttl_s)
        if not task.terminal and not task.stored_image:
            url += f"&progress={_progress_step(task)}"
        return url

    def part_urls(self, task: Task, base_url: str) -> list[str]:
        """Signed URLs of the four parts of a split grid (/mj/image/{mj_id}/{1-4}), cut when first read."""
        if not has_image(task):
            return []
        return [base_url + signed_image_path(self.secret_key, f"{task.mj_id}/{n}", self.ttl_s) for n in (1, 2, 3, 4)]

    def progress_image_url(self, task: Task, base_url: str) -> str:
        """The intermediate picture of a running task, or ""."""
        return self.image_url(task, base_url) if task.status == "IN_PROGRESS" else ""


def _progress_step(task: Task) -> str:
    return "".join(ch for ch in (task.progress or "") if ch.isdigit())[:3] or "0"
