"""An S3-compatible image store (AWS S3, MinIO, Cloudflare R2, ...) for several gateway instances.

A small client of our own over the app's one aiohttp session: SigV4-signed PUT and GET of one
object, path-style (`{endpoint}/{bucket}/{key}`) so MinIO-style endpoints work as they are.

- put: the upstream body is streamed to a temporary file while its SHA-256 is computed, then PUT
  from that file with Content-Length and x-amz-content-sha256 (the store checks the payload).
  No image is ever held in memory whole.
- serve: a signed GET with the client's Range / If-None-Match / If-Modified-Since, relayed in
  chunks (status 200/206/304, Content-Type/Length, ETag, Content-Range) by the same relay as
  the upstream image. If the store cannot answer, the caller falls back to the upstream.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import structlog
from starlette.responses import Response
from yarl import URL

from mjgate.bodies import read_head
from mjgate.images.proxy import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, RelayedImageResponse, forwarded_request_headers
from mjgate.images.sigv4 import EMPTY_SHA256, Credentials, sign_v4, uri_encode
from mjgate.images.store import CHUNK_BYTES, CONTENT_TYPES

log = structlog.get_logger(__name__)

PUT_TIMEOUT_S = 300
ERROR_BODY_BYTES = 4096
# Statuses of a GET that are the answer to give the client; anything else means "not from here".
RELAYED_STATUSES = (200, 206, 304, 412, 416)


class S3Error(Exception):
    pass


class S3Client:
    def __init__(self, http: aiohttp.ClientSession, *, bucket: str, region: str, access_key_id: str,
                 secret_access_key: str, endpoint_url: str | None = None):
        self.http = http
        self.bucket = bucket
        self.region = region
        self.credentials = Credentials(access_key_id, secret_access_key)
        self.endpoint = (endpoint_url or f"https://s3.{region}.amazonaws.com").rstrip("/")
        parts = URL(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.host:
            raise ValueError(f"S3 endpoint {self.endpoint!r} is not an http(s) URL")
        # What the client sends as Host (and so what must be signed): the port only when it is not the default.
        self.host = parts.raw_host if parts.is_default_port() else f"{parts.raw_host}:{parts.port}"

    def object_url(self, key: str) -> str:
        return f"{self.endpoint}/{uri_encode(self.bucket)}/{uri_encode(key, safe='/')}"

    def signed_headers(self, method: str, url: str, payload_sha256: str, extra: Mapping[str, str] = ()) -> dict:
        """Host and x-amz-* are signed; `extra` (Range, Content-Type, ...) rides along unsigned."""
        signed = sign_v4(method, url, {"host": self.host, "x-amz-content-sha256": payload_sha256}, payload_sha256,
                         self.credentials, region=self.region, service="s3")
        return {**dict(extra), **signed}

    async def put_file(self, key: str, path: Path, size: int, sha256_hex: str, content_type: str) -> None:
        url = self.object_url(key)
        headers = self.signed_headers("PUT", url, sha256_hex,
                                      {"Content-Type": content_type, "Content-Length": str(size)})
        with open(path, "rb") as body:  # aiohttp reads the file in chunks as it sends
            async with self.http.put(URL(url, encoded=True), data=body, headers=headers, allow_redirects=False,
                                     timeout=aiohttp.ClientTimeout(total=PUT_TIMEOUT_S)) as resp:
                if resp.status != 200:
                    raise S3Error(f"PUT {key}: {await _describe(resp)}")

    async def get(self, key: str, extra: Mapping[str, str] = ()) -> aiohttp.ClientResponse:
        """An open response (the caller closes it), whatever its status."""
        url = self.object_url(key)
        return await self.http.get(
            URL(url, encoded=True), headers=self.signed_headers("GET", url, EMPTY_SHA256, extra),
            allow_redirects=False, auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S),
        )

    async def get_bytes(self, key: str) -> bytes | None:
        """A whole (small) object, or None if there is none; for tools and tests."""
        async with await self.get(key) as resp:
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise S3Error(f"GET {key}: {await _describe(resp)}")
            return await resp.read()


async def _describe(resp: aiohttp.ClientResponse) -> str:
    """HTTP status plus S3's error code (SignatureDoesNotMatch, NoSuchBucket, ...) when it gives one."""
    body = (await read_head(resp.content, ERROR_BODY_BYTES)).decode("utf-8", "replace")
    code = re.search(r"<Code>([^<]*)</Code>", body)
    return f"HTTP {resp.status}" + (f" {code.group(1)}" if code else "")


class S3ImageStore:
    """Keys are `{prefix}{last two chars of mj_id}/{mj_id}{suffix}`, the whole object key."""

    def __init__(self, client: S3Client, prefix: str, max_bytes: int, spool_dir: Path | None = None):
        self.client = client
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.spool_dir = spool_dir

    def path_of(self, key: str) -> Path | None:
        return None  # nothing is on local disk

    async def put(self, mj_id: str, response: aiohttp.ClientResponse) -> str:
        content_type = response.content_type if response.content_type in CONTENT_TYPES else "application/octet-stream"
        key = f"{self.prefix}{mj_id[-2:]}/{mj_id}{CONTENT_TYPES.get(content_type, '.bin')}"
        if self.spool_dir is not None:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="mjgate-image-", suffix=".part", dir=self.spool_dir)
        temporary = Path(name)
        digest = hashlib.sha256()
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    written += len(chunk)
                    if written > self.max_bytes:
                        raise ValueError(f"image larger than {self.max_bytes} bytes")
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            await self.client.put_file(key, temporary, written, digest.hexdigest(), content_type)
        finally:
            temporary.unlink(missing_ok=True)
        return key

    async def serve(self, key: str, request_headers: Mapping[str, str]) -> Response | None:
        try:
            stored = await self.client.get(key, forwarded_request_headers(request_headers))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("image store unreachable; serving from the upstream", key=key, error=type(exc).__name__)
            return None
        if stored.status not in RELAYED_STATUSES:
            log.warning("image store refused; serving from the upstream", key=key, status=stored.status)
            stored.release()
            return None
        return RelayedImageResponse(stored, f"s3:{key}")
