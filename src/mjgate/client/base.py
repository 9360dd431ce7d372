"""What the sync and the async client share: settings, request bodies, picking a button, progress
bookkeeping. Everything here is free of I/O except reading local image files."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Union

import httpx

from mjgate.client import protocol
from mjgate.client.actions import MODAL_ACTIONS, is_custom_id, normalize
from mjgate.client.config import load_config
from mjgate.client.errors import ActionNotAvailable, MjgateError, TaskTimeoutError
from mjgate.client.models import Task

# An image given to imagine/describe/blend: raw bytes, a local path, a data: URI or an http(s) URL.
ImageInput = Union[bytes, str, "os.PathLike[str]"]
ProgressCallback = Callable[[Task], Any]
TaskRef = Union[Task, str, int]

DEFAULT_REQUEST_TIMEOUT_S = 60.0  # uploads of five base64 images take a while on slow links
DEFAULT_WAIT_TIMEOUT_S = 3600.0  # the gateway itself fails a task after an hour by default
DEFAULT_POLL_INTERVAL_S = 2.0
# While following the SSE stream, fetch the task anyway when nothing was heard of it for this long:
# events are notifications, a missed one must not leave the waiter stuck.
SSE_REFETCH_S = 10.0
SSE_MAX_FAILURES = 3  # consecutive broken streams before falling back to polling
CHANGE_ACTIONS = {"U": "UPSCALE", "V": "VARIATION"}


def task_id_of(task: TaskRef) -> str:
    if isinstance(task, Task):
        return task.id
    text = str(task).strip()
    if not text or isinstance(task, bool):
        raise MjgateError("a task id is required")
    return text


class ClientBase:
    def __init__(self, url: str | None = None, key: str | None = None, *, auth: str | None = None,
                 timeout: float = DEFAULT_REQUEST_TIMEOUT_S, poll_interval: float = DEFAULT_POLL_INTERVAL_S,
                 use_sse: bool = True) -> None:
        if url is None or key is None:
            stored = load_config()
            # The stored key belongs to the stored gateway: never hand it to another URL.
            same_gateway = url is None or (stored.url is not None
                                           and protocol.base_url_of(stored.url) == protocol.base_url_of(url))
            url = url or stored.url
            if key is None and same_gateway:
                key = stored.key
                auth = auth or stored.auth
        if not url:
            raise MjgateError("no gateway URL: run `mjgate login --url URL --key sk-...` or set MJGATE_URL")
        self.base_url = protocol.base_url_of(url)
        self.key = key or ""
        self.auth = auth or "bearer"
        self.headers = {"User-Agent": protocol.USER_AGENT, **protocol.auth_headers(self.key, self.auth)}
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.use_sse = use_sse
        self._sse_supported: bool | None = None  # learnt on first use

    # ------------------------------------------------------------ request bodies

    @staticmethod
    def _split_images(images: Iterable[ImageInput]) -> tuple[list[str], list[str]]:
        """(data URIs of local images, http(s) URLs) in the order given."""
        uris, urls = [], []
        for item in images:
            if isinstance(item, (bytes, bytearray)):
                uris.append(protocol.data_uri(bytes(item), "image"))
            elif isinstance(item, str) and protocol.is_url(item):
                urls.append(item)
            elif isinstance(item, str) and item.startswith("data:"):
                uris.append(item)
            else:
                path = Path(item)
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise MjgateError(f"cannot read image {path}: {exc.strerror or exc}") from None
                uris.append(protocol.data_uri(data, str(path)))
        return uris, urls

    @staticmethod
    def _choose_button(task: Task, name: str) -> tuple[str, dict | None]:
        """('action', {taskId, customId}) for a button, or ('change', {...}) when the server sends no buttons."""
        if is_custom_id(name):
            return "action", {"taskId": task.id, "customId": name}
        wanted = normalize(name)
        button = task.button(wanted)
        if button is not None:
            return "action", {"taskId": task.id, "customId": button.custom_id}
        if not task.succeeded:
            raise ActionNotAvailable(f"task {task.id} is {task.status or 'unknown'}: "
                                     "its buttons work once it has succeeded")
        if not task.buttons and (wanted == "reroll" or (len(wanted) == 2 and wanted[0] in CHANGE_ACTIONS)):
            # Servers that list no buttons still take midjourney-proxy's older /submit/change.
            body: dict[str, Any] = {"taskId": task.id}
            if wanted == "reroll":
                body["action"] = "REROLL"
            else:
                body.update(action=CHANGE_ACTIONS[wanted[0]], index=int(wanted[1]))
            return "change", body
        offered = " ".join(task.actions) or "none"
        raise ActionNotAvailable(f"task {task.id} has no {wanted!r} button (it offers: {offered})")

    @staticmethod
    def _check_modal_input(name: str, prompt: str | None, mask: ImageInput | None) -> None:
        wanted = normalize(name)
        if wanted == "custom-zoom" and not prompt:
            raise MjgateError("custom-zoom needs a prompt (for example '--zoom 1.8')")
        if wanted == "vary-region" and mask is None:
            raise MjgateError("vary-region needs a mask image (white where the picture may change)")

    @staticmethod
    def _needs_modal(name: str) -> bool:
        return normalize(name) in MODAL_ACTIONS

    def _stream_timeout(self, deadline: float | None) -> httpx.Timeout:
        read = SSE_REFETCH_S
        if deadline is not None:
            read = max(0.5, min(read, deadline - time.monotonic()))
        return httpx.Timeout(self.timeout, read=read)

    @staticmethod
    def _deadline(timeout: float | None) -> float | None:
        return None if timeout is None else time.monotonic() + timeout

    @staticmethod
    def _check_deadline(task: Task, deadline: float | None, timeout: float | None) -> None:
        if deadline is not None and time.monotonic() >= deadline:
            raise TaskTimeoutError(task.id, timeout or 0, task)

    @staticmethod
    def _sse_refused(resp: httpx.Response) -> bool:
        """True when the server has no (usable) event stream: then polling takes over."""
        content_type = resp.headers.get("content-type", "")
        return resp.status_code != 200 or not content_type.startswith("text/event-stream")

    def _unreachable(self, exc: Exception) -> MjgateError:
        from mjgate.client.errors import GatewayUnreachable

        return GatewayUnreachable(f"cannot reach the gateway at {self.base_url}: {exc or type(exc).__name__}")


class Watcher:
    """The latest known state of one awaited task; tells on_progress about each change once."""

    def __init__(self, task: Task, on_progress: ProgressCallback | None) -> None:
        self.task = task
        self.on_progress = on_progress
        self._last: tuple[str, str] | None = None
        self.heard_at = time.monotonic()

    def see(self, task: Task) -> Task:
        self.task = task
        self.heard_at = time.monotonic()
        state = (task.status, task.progress)
        if state != self._last:
            self._last = state
            if self.on_progress is not None:
                self.on_progress(task)
        return task

    @property
    def stale(self) -> bool:
        return time.monotonic() - self.heard_at >= SSE_REFETCH_S
