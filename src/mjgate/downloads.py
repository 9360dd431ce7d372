"""Downloading an image a client names by URL (describe, blend, image prompts), SSRF-safe.

Only public addresses are fetched: the host is checked after DNS, again at connect time by the
public-only resolver (so DNS rebinding cannot slip past), and on each of at most MAX_REDIRECTS
redirects. The body is bounded in size and time and must be a PNG, JPEG, WebP or GIF image.
"""

from __future__ import annotations

import asyncio
import base64
import io
import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import aiohttp
from PIL import Image

from mjgate.api.payloads import MAX_IMAGE_BYTES
from mjgate.errors import BadRequest
from mjgate.netguard import PublicOnlyResolver, is_public_address

MAX_DOWNLOAD_BYTES = MAX_IMAGE_BYTES
DOWNLOAD_TIMEOUT_S = 20.0
DOWNLOAD_CONNECT_TIMEOUT_S = 5.0
MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024
IMAGE_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


async def check_public_url(url: str, name: str = "image_url") -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"{name} must be an http(s) URL or a data: URI")
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        except OSError:
            raise BadRequest(f"{name} host {host} cannot be resolved") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise BadRequest(f"{name} host {host} is not a public address; the gateway does not fetch it")


def image_data_uri(data: bytes, name: str = "image_url") -> str:
    try:
        with Image.open(io.BytesIO(data)) as picture:
            mime = IMAGE_MIME.get(picture.format or "")
    except Exception:
        mime = None
    if mime is None:
        raise BadRequest(f"{name} is not a PNG, JPEG, WebP or GIF image")
    return f"data:{mime};base64,{base64.b64encode(bytes(data)).decode()}"


async def download_image(url: str, name: str = "image_url") -> str:
    """Fetch a public image (at most MAX_DOWNLOAD_BYTES) and return it as a data: URI."""
    too_big = f"{name} is larger than {MAX_DOWNLOAD_BYTES // (1024 * 1024)} MB"
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(), use_dns_cache=False, limit=2)
    timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S, connect=DOWNLOAD_CONNECT_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            for _ in range(MAX_REDIRECTS + 1):
                await check_public_url(url, name)
                async with http.get(url, allow_redirects=False, headers={"Accept": "image/*"}) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    if resp.status != 200:
                        raise BadRequest(f"{name} answered HTTP {resp.status}")
                    if (resp.content_length or 0) > MAX_DOWNLOAD_BYTES:
                        raise BadRequest(too_big)
                    data = bytearray()
                    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
                        data += chunk
                        if len(data) > MAX_DOWNLOAD_BYTES:
                            raise BadRequest(too_big)
                    break
            else:
                raise BadRequest(f"{name} redirects more than {MAX_REDIRECTS} times")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise BadRequest(f"{name} could not be downloaded: {type(exc).__name__}: {exc}"[:300]) from None
    return image_data_uri(bytes(data), name)
