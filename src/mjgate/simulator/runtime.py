"""The simulator's shared state: config, tasks, request log, counters, uploads and image cache."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter, OrderedDict, deque
from random import Random
from typing import Any

from aiohttp import web

from . import render
from .config import SimulatorConfig
from .notify import Notifier
from .state import Task, TaskStore

REQUEST_LOG_SIZE = 10_000
IMAGE_CACHE_SIZE = 256
ATTACHMENT_LIMIT = 2_000
STAT_KEYS = (
    "requests",
    "submits",
    "fetches",
    "list_by_condition_calls",
    "ids_polled",
    "notify_sent",
    "notify_failed",
    "notify_retried",
    "injected_errors",
    "injected_malformed",
    "forgotten",
    "images_served",
)


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.rng = Random(config.seed)
        self.stats: Counter[str] = Counter()
        self.requests: deque[dict] = deque(maxlen=REQUEST_LOG_SIZE)
        self.notifier = Notifier(self.stats)
        self.store = TaskStore(lambda: self.config, lambda: self.rng, self._task_changed)
        self.bound_base_url: str | None = None
        self._attachments: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._images: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._rendering: dict[tuple[str, int], asyncio.Future[bytes]] = {}

    # ---- knobs ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return (self.config.public_base_url or self.bound_base_url or "http://127.0.0.1").rstrip("/")

    def learn_base_url(self, request: web.Request) -> None:
        """When built by create_app alone (no start()), image URLs follow the first caller's view."""
        if self.bound_base_url is None:
            self.bound_base_url = f"{request.scheme}://{request.host}"

    def chance(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def configure(self, changes: dict[str, Any]) -> SimulatorConfig:
        new = self.config.updated(changes)
        if "seed" in changes:
            self.rng = Random(new.seed)
        self.config = new
        self.store.pump()  # a bigger core_size frees queued tasks now, not at the next finish
        return new

    def stats_view(self) -> dict[str, int]:
        view = {key: 0 for key in STAT_KEYS}
        view.update(self.stats)
        view["tasks"] = len(self.store.tasks)
        view["active"] = len(self.store.active())
        return view

    # ---- tasks ------------------------------------------------------------------------------

    def task_json(self, task: Task) -> dict:
        return task.to_json(self.base_url)

    def _task_changed(self, task: Task) -> None:
        if self.config.notify and task.notify_hook:
            self.notifier.send(task.id, task.notify_hook, self.task_json(task))

    def restart(self) -> None:
        self.store.clear()
        self._images.clear()

    def reset(self) -> None:
        self.restart()
        self.notifier.cancel_pending()  # retries of forgotten tasks must not count after a reset
        self.requests.clear()
        self.stats.clear()
        self._attachments.clear()

    # ---- media ------------------------------------------------------------------------------

    def add_attachment(self, data: bytes) -> str:
        """Keep an uploaded image and return the URL it is served at."""
        name = hashlib.sha256(data).hexdigest()[:24]
        kind = render.sniff_image_type(data) or "application/octet-stream"
        self._attachments[name] = (data, kind)
        self._attachments.move_to_end(name)
        while len(self._attachments) > ATTACHMENT_LIMIT:
            self._attachments.popitem(last=False)
        return f"{self.base_url}/mj/attachments/{name}"

    def attachment(self, name: str) -> tuple[bytes, str] | None:
        return self._attachments.get(name)

    async def image(self, task: Task) -> tuple[bytes, str] | None:
        """The picture of a finished task, rendered on first request and kept in a small LRU."""
        kind = task.image_kind
        if task.status != "SUCCESS" or kind is None:
            return None
        if kind == "upload":
            data = task.upload or b""
            sniffed = render.sniff_image_type(data)
            if sniffed:
                return data, sniffed
            kind = "single"  # not a picture we recognise: show a placeholder instead
        key = (task.id, self.config.image_size)
        cached = self._images.get(key)
        if cached is None:
            cached = await self._render_once(key, task, kind)
        else:
            self._images.move_to_end(key)
        return cached, "image/png"

    async def _render_once(self, key: tuple[str, int], task: Task, kind: str) -> bytes:
        # Many clients fetch a fresh image at the same moment; they share one rendering.
        future = self._rendering.get(key)
        if future is None:
            size = render.cell_size(key[1], task.aspect)
            if kind == "grid":
                job = asyncio.to_thread(render.render_grid, task.render_seed, task.prompt, size)
            else:
                job = asyncio.to_thread(
                    render.render_single, task.render_seed, task.render_index or 1, task.prompt, size
                )
            future = asyncio.ensure_future(job)
            self._rendering[key] = future
            try:
                data = await future
            finally:
                del self._rendering[key]
            self._images[key] = data
            while len(self._images) > IMAGE_CACHE_SIZE:
                self._images.popitem(last=False)
            return data
        return await asyncio.shield(future)


SIM = web.AppKey("mjgate.simulator", Simulator)
