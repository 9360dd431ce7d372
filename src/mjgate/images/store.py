"""The gateway's own copy of final images, so old tasks keep their pictures when upstream links expire.

After a task succeeds, its image is copied (streamed to a temporary file, then renamed, so a
reader never sees half a file) into the local store under data_dir/images; the image endpoint
serves that copy from then on. Copies run in the background with bounded concurrency; a copy
that fails leaves the task served from the upstream as before.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import aiohttp
import structlog
from sqlalchemy import update

from mjgate.db import Database
from mjgate.images.proxy import check_source
from mjgate.models import Channel, Task

log = structlog.get_logger(__name__)

COPY_CONCURRENCY = 4
COPY_TIMEOUT_S = 120
CHUNK_BYTES = 64 * 1024
CONTENT_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}


class LocalImageStore:
    def __init__(self, root: Path, max_bytes: int):
        self.root = root
        self.max_bytes = max_bytes

    def path_of(self, key: str) -> Path | None:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents or not path.is_file():
            return None
        return path

    async def put(self, mj_id: str, response: aiohttp.ClientResponse) -> str:
        suffix = CONTENT_TYPES.get(response.content_type, ".bin")
        key = f"{mj_id[-2:]}/{mj_id}{suffix}"
        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        written = 0
        try:
            with open(temporary, "wb") as out:
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    written += len(chunk)
                    if written > self.max_bytes:
                        raise ValueError(f"image larger than {self.max_bytes} bytes")
                    await asyncio.to_thread(out.write, chunk)
            os.replace(temporary, final)
        finally:
            if temporary.exists():
                temporary.unlink()
        return key


class ImageCopier:
    def __init__(self, db: Database, http: aiohttp.ClientSession, store: LocalImageStore):
        self.db = db
        self.http = http
        self.store = store
        self._semaphore = asyncio.Semaphore(COPY_CONCURRENCY)
        self._running: set[asyncio.Task] = set()

    def schedule(self, task: Task) -> None:
        if task.status != "SUCCESS" or not task.image_url or task.stored_image:
            return
        job = asyncio.create_task(self.copy(task.id))
        self._running.add(job)
        job.add_done_callback(self._running.discard)

    async def copy(self, task_id: int) -> str | None:
        async with self._semaphore:
            async with self.db.read() as session:
                task = await session.get(Task, task_id)
                channel = await session.get(Channel, task.channel_id) if task and task.channel_id else None
            if task is None or task.stored_image or not task.image_url:
                return None
            try:
                url = check_source(task.image_url, channel)
                async with self.http.get(url, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=COPY_TIMEOUT_S)) as resp:
                    if resp.status != 200:
                        raise ValueError(f"HTTP {resp.status}")
                    key = await self.store.put(task.mj_id, resp)
            except Exception as exc:  # the upstream copy stays the source; nothing is lost
                log.warning("image copy failed", task=task.mj_id, error=f"{type(exc).__name__}: {exc}")
                return None
            async with self.db.write() as session:
                # Bookkeeping only: the task's state does not change.
                await session.execute(update(Task).where(Task.id == task_id).values(stored_image=key))
            return key

    async def drain(self, timeout_s: float = 10) -> None:
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout_s)
