"""Images the gateway itself handed out: read them internally, never over the network.

A client that passes back an `image_url` the gateway gave it (describe, edits, videos, image
prompts) names one of the gateway's own images. On a LAN or behind NAT that URL's host is a
private address, which the public-address rule (downloads.py) rightly refuses to fetch. Such a URL
is recognised here instead, strictly: the path /mj/image/{mj_id}[/{part}], a valid unexpired
signature, and the host of MJGATE_PUBLIC_URL or the host the client called. Its bytes come from the
image store, else from the task's channel (the image proxy's allow-list): no request to the URL itself.
Anything else is not ours and keeps the public-address rule.

The same class cuts split grids (images/grid.py) and keeps their parts in the store.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs, urlsplit

import aiohttp
import structlog

from mjgate.api.payloads import MAX_IMAGE_BYTES
from mjgate.bodies import BodyTooLarge, read_body
from mjgate.db import Database
from mjgate.downloads import image_data_uri
from mjgate.errors import BadRequest, GatewayError, NotFound, UpstreamError
from mjgate.images.grid import PARTS, is_grid, split_grid
from mjgate.images.links import Links
from mjgate.images.proxy import check_source, origin_of
from mjgate.images.signing import check_image_signature
from mjgate.models import Task
from mjgate.tasks import repository

log = structlog.get_logger(__name__)

FETCH_TIMEOUT_S = 30
_OWN_PATH = re.compile(r"^/mj/image/(?P<mj_id>[A-Za-z0-9_-]{1,64})(?:/(?P<part>[1-4]))?$")


def part_name(mj_id: str, part: int) -> str:
    """The store name of a split grid's part (the store adds its prefix and the suffix)."""
    return f"{mj_id[-2:]}/{mj_id}-{part}"


def part_keys(store, mj_id: str) -> list[str]:
    """The keys put_bytes gives a grid's four parts in `store` (both stores add prefix and suffix alike)."""
    return [f"{getattr(store, 'prefix', '')}{part_name(mj_id, n)}.png" for n in PARTS]


class GatewayImages:
    def __init__(self, db: Database, http: aiohttp.ClientSession, reference, links: Links, store=None):
        self.db = db
        self.http = http
        self.reference = reference
        self.links = links
        self.store = store  # the ImageStore, or None (MJGATE_IMAGE_STORE=none)
        self._cutting: dict[str, asyncio.Future] = {}

    # ------------------------------------------------------------------ recognising our URLs

    def own_reference(self, url: str, request_base: str) -> tuple[str, int | None] | None:
        """(mj_id, part) when `url` is a validly signed image URL of this gateway, else None."""
        parts = urlsplit(url)
        origin = origin_of(url)
        match = _OWN_PATH.match(parts.path)
        if origin is None or match is None:
            return None
        ours = {o for o in (origin_of(self.links.public_url or ""), origin_of(request_base)) if o is not None}
        if origin not in ours:
            return None
        query = parse_qs(parts.query)
        mj_id, part = match["mj_id"], int(match["part"]) if match["part"] else None
        signed_as = f"{mj_id}/{part}" if part else mj_id
        if not check_image_signature(self.links.verify_keys(), signed_as, (query.get("expires") or [None])[0],
                                     (query.get("sig") or [None])[0]):
            return None
        return mj_id, part

    async def data_uri_of(self, url: str, request_base: str, name: str = "image_url") -> str | None:
        """The image as a data: URI when the URL is one of ours; None when it is not (fetch it the usual way)."""
        ref = self.own_reference(url, request_base)
        if ref is None:
            return None
        mj_id, part = ref
        task = await self._task(mj_id)
        data = await (self.part(task, part) if part else self.original(task))
        return image_data_uri(data, name)

    async def own_prompt_images(self, prompt: str, request_base: str, limit: int = 5) -> tuple[str, list[str]]:
        """Leading image URLs of a prompt that are the gateway's own, moved out of it as data: URIs (for
        base64Array: the upstream could not fetch them from a private address either). Other URLs stay."""
        tokens = prompt.split()
        images: list[str] = []
        kept: list[str] = []
        while tokens and tokens[0].lower().startswith(("http://", "https://")):
            url = tokens.pop(0)
            own = await self.data_uri_of(url, request_base, "prompt image") if len(images) < limit else None
            if own is None:
                kept.append(url)
            else:
                images.append(own)
        if not images:
            return prompt, []
        return " ".join([*kept, *tokens]), images

    # ------------------------------------------------------------------ reading images

    async def _task(self, mj_id: str) -> Task:
        async with self.db.reading() as session:
            task = await repository.get_by_mj_id(session, mj_id)
        if task is None:
            raise NotFound(f"task {mj_id} not found")
        return task

    async def original(self, task: Task) -> bytes:
        """The task's image: the stored copy, else the channel's (allow-listed, no redirects)."""
        if self.store is not None and task.stored_image:
            try:
                data = await self.store.get_bytes(task.stored_image)
            except Exception as exc:  # the store cannot answer: the channel still can
                log.warning("image store read failed", task=task.mj_id, error=f"{type(exc).__name__}: {exc}")
                data = None
            if data is not None:
                return data
        if not task.image_url:
            raise NotFound(f"task {task.mj_id} has no image")
        channel = (await self.reference.current()).channels.get(task.channel_id)
        url = check_source(task.image_url, channel)
        try:
            async with self.http.get(url, allow_redirects=False,
                                     timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)) as resp:
                if resp.status != 200:
                    raise UpstreamError(f"the upstream answered HTTP {resp.status} for the image of {task.mj_id}")
                return await read_body(resp.content, MAX_IMAGE_BYTES)
        except BodyTooLarge:
            raise BadRequest(f"the image of {task.mj_id} is larger than {MAX_IMAGE_BYTES >> 20} MB") from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise UpstreamError(f"the image of {task.mj_id} could not be fetched: {type(exc).__name__}") from None

    async def part(self, task: Task, part: int) -> bytes:
        """One quarter of a finished grid (1-4): kept in the store once cut, cut once for concurrent readers."""
        if part not in PARTS:
            raise NotFound(f"a grid has parts 1 to 4, not {part}")
        if task.status != "SUCCESS" or not is_grid(task):
            raise NotFound(f"task {task.mj_id} is not a finished grid of four images")
        if self.store is not None:
            try:
                stored = await self.store.get_bytes(part_keys(self.store, task.mj_id)[part - 1])
            except Exception:
                stored = None
            if stored is not None:
                return stored
        pending = self._cutting.get(task.mj_id)
        if pending is None:
            pending = asyncio.ensure_future(self._cut(task))
            self._cutting[task.mj_id] = pending
            pending.add_done_callback(lambda _: self._cutting.pop(task.mj_id, None))
        return (await asyncio.shield(pending))[part - 1]

    async def _cut(self, task: Task) -> list[bytes]:
        data = await self.original(task)
        try:
            parts = await asyncio.to_thread(split_grid, data)
        except Exception as exc:
            raise GatewayError(f"the image of {task.mj_id} could not be split: {type(exc).__name__}",
                               status=502, code="api_error") from None
        if self.store is not None:
            for number, content in zip(PARTS, parts):
                try:
                    await self.store.put_bytes(part_name(task.mj_id, number), content, "image/png")
                except Exception as exc:  # served from memory this time; cut again next time
                    log.warning("split image not stored", task=task.mj_id, error=f"{type(exc).__name__}: {exc}")
                    break
        return parts
