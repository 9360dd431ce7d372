"""An S3-compatible image store (AWS S3, MinIO, Cloudflare R2, ...) for several gateway instances.

On aiobotocore (botocore over aiohttp), so signing, the credential chain, retries and addressing
are botocore's:

- credentials: MJGATE_S3_ACCESS_KEY_ID / MJGATE_S3_SECRET_ACCESS_KEY when set; otherwise botocore's
  default chain (AWS_* variables, shared config and profiles, SSO, web identity / STS assume-role,
  ECS/EKS container credentials, EC2 instance metadata), refreshed before they expire;
- retries: botocore's "standard" mode (MJGATE_S3_MAX_ATTEMPTS attempts, 5xx, throttling, dropped
  connections) with backoff;
- addressing: MJGATE_S3_ADDRESSING=path ({endpoint}/{bucket}/{key}, what MinIO-style endpoints need)
  or virtual ({bucket}.{endpoint host}/{key}).

- put: the upstream body is streamed to a temporary file (bounded by the size limit, never held
  in memory whole), then uploaded: one PUT up to PART_BYTES, a multipart upload above that
  (aborted if any part fails, so no hidden partial upload is left behind).
- serve: a GET with the client's Range / If-None-Match / If-Modified-Since; S3's own answer is
  relayed — 200/206 streamed in chunks from the open response, 304/412/416 with their headers.
  If the store cannot answer, the caller falls back to the upstream.

Chosen over obstore after measuring both against moto (docs/benchmarks-s3.md).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import structlog
from starlette.responses import Response

from mjgate.images.proxy import CONNECT_TIMEOUT_S, FORWARDED_HEADERS, READ_TIMEOUT_S, RelayedImageResponse
from mjgate.images.store import CACHE_CONTROL, CHUNK_BYTES, CONTENT_TYPES

log = structlog.get_logger(__name__)

PART_BYTES = 8 << 20  # multipart above this; also each part's size (S3's minimum part is 5 MiB)
ADDRESSING_STYLES = ("path", "virtual")
# GET answers that are the answer to give the client (botocore raises for the last three).
ANSWERED_ERROR_STATUSES = (304, 412, 416)
# Client request headers → get_object parameters.
CONDITIONAL_PARAMETERS = {"range": "Range", "if-none-match": "IfNoneMatch", "if-modified-since": "IfModifiedSince"}


class S3Error(Exception):
    pass


def _describe(exc: Exception) -> str:
    """HTTP status plus S3's error code (SignatureDoesNotMatch, NoSuchBucket, ...) when there is one."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code", "")
        return f"HTTP {status} {code}".strip()
    return f"{type(exc).__name__}: {exc}"


def _status_of(exc: Exception) -> int | None:
    response = getattr(exc, "response", None) or {}
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode")


class S3Client:
    """One bucket through one aiobotocore client, opened on first use and closed by close()."""

    def __init__(self, *, bucket: str, region: str, endpoint_url: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 addressing: str = "path", max_attempts: int = 5, part_bytes: int = PART_BYTES,
                 connector_args: dict | None = None):
        if addressing not in ADDRESSING_STYLES:
            raise ValueError(f"S3 addressing must be one of {', '.join(ADDRESSING_STYLES)}, not {addressing!r}")
        if bool(access_key_id) != bool(secret_access_key):
            raise ValueError("set both the S3 access key id and the secret access key, or neither "
                             "(then the default AWS credential chain is used)")
        if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
            raise ValueError(f"S3 endpoint {endpoint_url!r} is not an http(s) URL")
        self.bucket = bucket
        self.region = region
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.addressing = addressing
        self.part_bytes = part_bytes
        self._keys = {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key} \
            if access_key_id else {}
        self._max_attempts = max_attempts
        self._connector_args = connector_args  # tests: a resolver for virtual-host names
        self._context = None
        self._client = None
        self._opening = asyncio.Lock()

    async def client(self):
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    from aiobotocore.config import AioConfig
                    from aiobotocore.session import get_session

                    config = AioConfig(
                        s3={"addressing_style": self.addressing},
                        retries={"mode": "standard", "max_attempts": self._max_attempts},
                        connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S, max_pool_connections=50,
                        # Checksums only where S3 requires them: S3-compatible stores (older MinIO, R2, ...)
                        # refuse the CRC headers newer botocore adds by default.
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                        **({"connector_args": self._connector_args} if self._connector_args else {}),
                    )
                    context = get_session().create_client("s3", region_name=self.region,
                                                          endpoint_url=self.endpoint_url, config=config,
                                                          **self._keys)
                    self._client = await context.__aenter__()
                    self._context = context
        return self._client

    async def close(self) -> None:
        if self._context is not None:
            context, self._context, self._client = self._context, None, None
            await context.__aexit__(None, None, None)

    async def put_file(self, key: str, path: Path, size: int, content_type: str) -> None:
        client = await self.client()
        try:
            if size <= self.part_bytes:
                with open(path, "rb") as body:
                    await client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentLength=size,
                                            ContentType=content_type)
                return
            await self._put_multipart(client, key, path, content_type)
        except S3Error:
            raise
        except Exception as exc:
            raise S3Error(f"PUT {key}: {_describe(exc)}") from None

    async def _put_multipart(self, client, key: str, path: Path, content_type: str) -> None:
        upload = await client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        upload_id = upload["UploadId"]
        parts = []
        try:
            with open(path, "rb") as source:
                number = 1
                # One part in memory at a time.
                while data := await asyncio.to_thread(source.read, self.part_bytes):
                    done = await client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                    PartNumber=number, Body=data)
                    parts.append({"PartNumber": number, "ETag": done["ETag"]})
                    number += 1
            await client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                   MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception as exc:  # the original failure is the one to report
                log.warning("S3 multipart upload could not be aborted", key=key, error=_describe(exc))
            raise

    async def get(self, key: str, headers: Mapping[str, str] = ()) -> dict:
        """get_object's answer (its Body is open: the caller closes it); raises botocore's errors."""
        params = {"Bucket": self.bucket, "Key": key}
        for header, parameter in CONDITIONAL_PARAMETERS.items():
            if header in headers:
                params[parameter] = headers[header]
        client = await self.client()
        return await client.get_object(**params)

    async def get_bytes(self, key: str) -> bytes | None:
        """A whole (small) object, or None if there is none; for tools and tests."""
        try:
            answer = await self.get(key)
        except Exception as exc:
            if _status_of(exc) == 404:
                return None
            raise S3Error(f"GET {key}: {_describe(exc)}") from None
        async with answer["Body"] as body:
            return await body.read()

    async def delete(self, key: str) -> None:
        """Remove an object; one that is not there counts as removed."""
        client = await self.client()
        try:
            await client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _status_of(exc) != 404:
                raise S3Error(f"DELETE {key}: {_describe(exc)}") from None


def _answered_headers(exc: Exception) -> dict[str, str]:
    sent = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPHeaders", {})
    headers = {k: v for k, v in sent.items() if k.lower() in FORWARDED_HEADERS and k.lower() != "content-length"}
    headers["Cache-Control"] = CACHE_CONTROL
    return headers


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
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    written += len(chunk)
                    if written > self.max_bytes:
                        raise ValueError(f"image larger than {self.max_bytes} bytes")
                    await asyncio.to_thread(out.write, chunk)
            await self.client.put_file(key, temporary, written, content_type)
        finally:
            temporary.unlink(missing_ok=True)
        return key

    async def put_bytes(self, name: str, data: bytes, content_type: str) -> str:
        key = f"{self.prefix}{name}{CONTENT_TYPES.get(content_type, '.bin')}"
        fd, path = tempfile.mkstemp(prefix="mjgate-image-", suffix=".part", dir=self.spool_dir)
        temporary = Path(path)
        try:
            with os.fdopen(fd, "wb") as out:
                await asyncio.to_thread(out.write, data)
            await self.client.put_file(key, temporary, len(data), content_type)
        finally:
            temporary.unlink(missing_ok=True)
        return key

    async def get_bytes(self, key: str) -> bytes | None:
        return await self.client.get_bytes(key)

    async def delete(self, key: str) -> None:
        await self.client.delete(key)

    async def close(self) -> None:
        await self.client.close()

    async def serve(self, key: str, request_headers: Mapping[str, str]) -> Response | None:
        try:
            answer = await self.client.get(key, request_headers)
        except Exception as exc:  # botocore's ClientError / BotoCoreError, or the network
            status = _status_of(exc)
            if status in ANSWERED_ERROR_STATUSES:
                return Response(status_code=status, headers=_answered_headers(exc))
            if status is None:
                log.warning("image store unreachable; serving from the upstream", key=key, error=_describe(exc))
            else:
                log.warning("image store refused; serving from the upstream", key=key, status=status)
            return None
        return RelayedImageResponse(answer["Body"].raw_stream, f"s3:{key}")
