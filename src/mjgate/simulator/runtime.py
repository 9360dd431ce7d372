"""The simulator's shared state: config, tasks, request log, counters, uploads and image cache."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from random import Random
from typing import Any

from aiohttp import web

from . import render
from .config import SimulatorConfig
from .notify import Notifier
from .state import Task, TaskStore

REQUEST_LOG_SIZE = 10_000
IMAGE_CACHE_SIZE = 256
VIDEO_CACHE_SIZE = 32  # a clip is a few hundred KB (uncompressed frames)
ATTACHMENT_LIMIT = 2_000
# Counters; /__sim/stats shows every one, 0 until it moves.
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
    "progress_images_served",
    "videos_served",
    "max_running_seen",
    "refused_queue_full",
    "failed_no_fast_hours",
    "cancelled",
)


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.rng = Random(config.seed)
        self.stats: Counter[str] = Counter()
        self.requests: deque[dict] = deque(maxlen=REQUEST_LOG_SIZE)
        self.notifier = Notifier(self.stats)
        self.store = TaskStore(lambda: self.config, lambda: self.rng, self._task_changed, self.stats)
        self.bound_base_url: str | None = None
        self._attachments: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        # Rendered media by (task id, what, size), what being "picture", "progress-N" or
        # "video-N"; two LRUs so a few big clips never push out the many small pictures.
        self._images: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
        self._videos: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
        self._rendering: dict[tuple[str, str, int], asyncio.Future[bytes]] = {}

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

    def stats_view(self) -> dict[str, int | float | None]:
        view: dict[str, int | float | None] = {key: 0 for key in STAT_KEYS}
        view.update(self.stats)
        view["tasks"] = len(self.store.tasks)
        view["active"] = len(self.store.active())
        view["running"] = self.store.running_count
        view["queued"] = self.store.queued_count
        left = self.store.fast_hours_left()
        view["fast_hours_left"] = None if left is None else round(left, 6)
        return view

    # ---- tasks ------------------------------------------------------------------------------

    def task_json(self, task: Task) -> dict:
        return task.to_json(self.base_url, self.config.progress_images)

    def _task_changed(self, task: Task) -> None:
        if self.config.notify and task.notify_hook:
            self.notifier.send(task.id, task.notify_hook, self.task_json(task))

    def restart(self) -> None:
        self.store.clear()
        self._images.clear()
        self._videos.clear()

    def reset(self) -> None:
        self.restart()
        self.notifier.cancel_pending()  # retries of forgotten tasks must not count after a reset
        self.requests.clear()
        self.stats.clear()
        self.store.fast_seconds_used = 0.0  # a restart keeps the account's usage; a reset does not
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
        return await self._picture(task), "image/png"

    async def progress_image(self, task: Task, percent: int) -> bytes | None:
        """The picture `percent`% of the way, derived from the final one (any status: Discord's
        intermediate attachments stay reachable after the job ends)."""
        if task.image_kind not in ("grid", "single") or not 0 < percent < 100:
            return None
        final = await self._picture(task)
        return await self._render_once((task.id, f"progress-{percent}", self.config.image_size),
                                       lambda: render.render_progress(final, percent))

    async def video(self, task: Task, index: int) -> bytes | None:
        if task.status != "SUCCESS" or not 0 <= index < task.video_count:
            return None

        def draw() -> bytes:
            cell = task.render_index or 1
            return render.render_video(task.render_seed, cell, task.prompt, task.aspect, task.video_resolution,
                                       index, task.video_loop)

        return await self._render_once((task.id, f"video-{index}", 0), draw, self._videos, VIDEO_CACHE_SIZE)

    async def _picture(self, task: Task) -> bytes:
        size = render.cell_size(self.config.image_size, task.aspect)
        if task.image_kind == "grid":
            def draw() -> bytes:
                return render.render_grid(task.render_seed, task.prompt, size)
        else:  # a single picture; also the placeholder for an upload we do not recognise
            def draw() -> bytes:
                return render.render_single(task.render_seed, task.render_index or 1, task.prompt, size)
        return await self._render_once((task.id, "picture", self.config.image_size), draw)

    async def _render_once(self, key: tuple[str, str, int], draw: Callable[[], bytes],
                           cache: OrderedDict | None = None, keep: int = IMAGE_CACHE_SIZE) -> bytes:
        """Render in a thread once per key; clients asking at the same moment share the result."""
        cache = self._images if cache is None else cache
        cached = cache.get(key)
        if cached is not None:
            cache.move_to_end(key)
            return cached
        future = self._rendering.get(key)
        if future is None:
            future = asyncio.ensure_future(asyncio.to_thread(draw))
            self._rendering[key] = future
            try:
                data = await future
            finally:
                del self._rendering[key]
            cache[key] = data
            while len(cache) > keep:
                cache.popitem(last=False)
            return data
        return await asyncio.shield(future)


SIM = web.AppKey("mjgate.simulator", Simulator)
