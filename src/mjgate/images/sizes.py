"""A result's width and height, read once from the first bytes of its image (AceData answers carry them).

The gateway's own copy is read from disk; otherwise the upstream image is fetched with a Range
request through the channel's image allow-list (no SSRF). Sizes are kept in a bounded cache per
process (owned by the resources, not a module global); a failed probe is not cached.
"""

from __future__ import annotations

import asyncio
import io
from collections import OrderedDict

import aiohttp
import structlog
from PIL import Image

from mjgate.bodies import read_head
from mjgate.errors import GatewayError
from mjgate.images.proxy import check_source
from mjgate.models import Task

log = structlog.get_logger(__name__)

SIZE_PROBE_BYTES = 64 * 1024
SIZE_PROBE_TIMEOUT_S = 3.0
SIZE_PROBE_CONCURRENCY = 8
SIZE_CACHE_MAX = 20_000


def sniff_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as picture:
            width, height = picture.size
    except Exception:
        return None
    return (width, height) if width > 0 and height > 0 else None


def known_size(properties: dict) -> tuple[int, int] | None:
    """A size the upstream reported itself, under any of the names upstreams use."""
    for w_key, h_key in (("width", "height"), ("imageWidth", "imageHeight"), ("image_width", "image_height")):
        try:
            width, height = int(properties.get(w_key) or 0), int(properties.get(h_key) or 0)
        except (TypeError, ValueError):
            continue
        if width > 0 and height > 0:
            return width, height
    return None


def _read_head(path) -> bytes:
    with open(path, "rb") as f:
        return f.read(SIZE_PROBE_BYTES)


class ImageSizes:
    def __init__(self, http: aiohttp.ClientSession, reference, image_copier=None):
        self.http = http
        self.reference = reference
        self.image_copier = image_copier
        self._cache: OrderedDict[str, tuple[int, int] | None] = OrderedDict()

    async def of(self, task: Task) -> tuple[int, int] | None:
        if task.status != "SUCCESS" or task.action == "DESCRIBE" or not (task.image_url or task.stored_image):
            return None
        known = known_size(task.properties or {})
        if known:
            return known
        if task.mj_id in self._cache:
            self._cache.move_to_end(task.mj_id)
            return self._cache[task.mj_id]
        size = None
        copier = self.image_copier
        stored = copier.store.path_of(task.stored_image) if copier is not None and task.stored_image else None
        try:
            if stored is not None:  # the gateway's own copy: no network
                size = sniff_size(await asyncio.to_thread(_read_head, stored))
            else:
                channel = (await self.reference.current()).channels.get(task.channel_id)
                url = check_source(task.image_url, channel)  # the image proxy's allow-list: no SSRF
                timeout = aiohttp.ClientTimeout(total=SIZE_PROBE_TIMEOUT_S)
                async with self.http.get(url, headers={"Range": f"bytes=0-{SIZE_PROBE_BYTES - 1}"},
                                         allow_redirects=False, timeout=timeout) as resp:
                    if resp.status in (200, 206):
                        size = sniff_size(await read_head(resp.content, SIZE_PROBE_BYTES))
        except (GatewayError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.info("image size probe failed", task=task.mj_id, error=type(exc).__name__)
            return None  # not cached: the next read tries again
        self._cache[task.mj_id] = size
        while len(self._cache) > SIZE_CACHE_MAX:
            self._cache.popitem(last=False)
        return size

    async def of_many(self, tasks: list[Task]) -> dict[str, tuple[int, int] | None]:
        semaphore = asyncio.Semaphore(SIZE_PROBE_CONCURRENCY)

        async def one(task: Task):
            async with semaphore:
                return task.mj_id, await self.of(task)

        return dict(await asyncio.gather(*(one(t) for t in tasks)))
