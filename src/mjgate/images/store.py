"""The gateway's own copy of final images, so old tasks keep their pictures when upstream links expire.

After a task succeeds, its image is copied into the configured store and the image endpoint
serves that copy from then on: the local store under data_dir/images (streamed to a temporary
file, then renamed, so a reader never sees half a file), or an S3-compatible bucket shared by
several instances (images/s3.py). Copies run in the background with bounded concurrency; a copy
that fails, or a store that cannot answer, leaves the task served from the upstream as before.

Every store has the same methods (ImageStore): put() copies an upstream response and returns the
key recorded in tasks.stored_image, serve() answers a client's request for a key (or None: serve
from the upstream), path_of() gives a local file when the store has one, delete() removes a key
(retention), close() releases the store's connections.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import aiohttp
import structlog
from starlette.responses import FileResponse, Response

from mjgate.db import Database
from mjgate.images.proxy import check_source
from mjgate.channels import repository as channels
from mjgate.models import Task
from mjgate.tasks import repository as tasks

if TYPE_CHECKING:
    from mjgate.config import Settings

log = structlog.get_logger(__name__)

COPY_CONCURRENCY = 4
COPY_TIMEOUT_S = 120
CHUNK_BYTES = 64 * 1024
# Videos too: a video face swap's result is in imageUrl (midjourney-proxy puts it there).
CONTENT_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif",
                 "video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov"}
CACHE_CONTROL = "private, max-age=86400"


class ImageStore(Protocol):
    async def put(self, mj_id: str, response: aiohttp.ClientResponse) -> str:
        """Copy an upstream image response (status 200) into the store; the key to record."""

    async def serve(self, key: str, request_headers: Mapping[str, str]) -> Response | None:
        """The response for a client asking for `key` (Range, If-None-Match honoured), or None when
        the store has no such image or cannot answer: the upstream is then the source."""

    def path_of(self, key: str) -> Path | None:
        """The key's file on local disk, if the store keeps one there."""

    async def put_bytes(self, name: str, data: bytes, content_type: str) -> str:
        """Keep an image the gateway made itself (a split grid's part) under `name`; the key to record."""

    async def get_bytes(self, key: str) -> bytes | None:
        """A whole stored image, or None when the store has no such key."""

    async def delete(self, key: str) -> None:
        """Remove the key's image; a key that is not there counts as removed."""

    async def close(self) -> None:
        """Release connections (at shutdown)."""


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

    async def put_bytes(self, name: str, data: bytes, content_type: str) -> str:
        key = f"{name}{CONTENT_TYPES.get(content_type, '.bin')}"
        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        try:
            await asyncio.to_thread(temporary.write_bytes, data)
            os.replace(temporary, final)
        finally:
            if temporary.exists():
                temporary.unlink()
        return key

    async def get_bytes(self, key: str) -> bytes | None:
        path = self.path_of(key)
        return await asyncio.to_thread(path.read_bytes) if path is not None else None

    async def delete(self, key: str) -> None:
        path = (self.root / key).resolve()
        if self.root.resolve() in path.parents:
            path.unlink(missing_ok=True)

    async def close(self) -> None:
        pass

    async def serve(self, key: str, request_headers: Mapping[str, str]) -> Response | None:
        path = self.path_of(key)
        if path is None:
            return None
        # Passing the stat fills ETag / Last-Modified now, so If-None-Match can be answered here.
        response = FileResponse(path, stat_result=os.stat(path), headers={"Cache-Control": CACHE_CONTROL})
        etag = response.headers.get("etag")
        if etag and etag in request_headers.get("if-none-match", ""):
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
        return response


def build_image_store(settings: Settings, http: aiohttp.ClientSession) -> ImageStore | None:
    """The store MJGATE_IMAGE_STORE names: 'local', 's3', or None for anything else ('none')."""
    max_bytes = settings.image_store_max_mb << 20
    if settings.image_store == "local":
        return LocalImageStore(settings.data_dir / "images", max_bytes)
    if settings.image_store == "s3":
        from mjgate.images.s3 import S3Client, S3ImageStore

        if not settings.s3_bucket:
            raise ValueError("MJGATE_IMAGE_STORE=s3 needs MJGATE_S3_BUCKET")
        secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
        client = S3Client(bucket=settings.s3_bucket, region=settings.s3_region,
                          endpoint_url=settings.s3_endpoint_url, access_key_id=settings.s3_access_key_id,
                          secret_access_key=secret, addressing=settings.s3_addressing,
                          max_attempts=settings.s3_max_attempts)
        return S3ImageStore(client, settings.s3_prefix, max_bytes)
    return None


class ImageCopier:
    def __init__(self, db: Database, http: aiohttp.ClientSession, store: ImageStore):
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
                task = await tasks.get(session, task_id)
                channel = await channels.get(session, task.channel_id) if task and task.channel_id else None
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
                await tasks.set_stored_image(session, task_id, key)
            return key

    async def drain(self, timeout_s: float = 10) -> None:
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout_s)
