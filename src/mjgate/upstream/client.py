"""The midjourney-proxy client the gateway uses to talk to its channels (aiohttp, one session per process)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from mjgate.bodies import BodyTooLarge, read_body

SUBMIT_TIMEOUT_S = 30
FETCH_TIMEOUT_S = 15
MAX_UPSTREAM_BODY = 8 * 1024 * 1024


class UpstreamUnavailable(Exception):
    """The channel did not give a usable answer: connection error, timeout, 5xx, or not JSON.

    Before acceptance this means "try the next channel"; the job was not taken.
    """


@dataclass
class SubmitResult:
    code: int
    description: str = ""
    result: Any = None
    properties: dict = field(default_factory=dict)


def _headers(secret: str) -> dict:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if secret:
        headers["mj-api-secret"] = secret
    return headers


def _route(base_url: str, path: str, mode: str | None) -> str:
    """Keep an explicit speed mode in the path (/mj-relax/mj/...), which upstreams that support modes honour."""
    prefix = f"/mj-{mode}" if mode else ""
    return f"{base_url.rstrip('/')}{prefix}/mj{path}"


class UpstreamClient:
    def __init__(self, session: aiohttp.ClientSession):
        self.session = session

    async def _request(self, method: str, url: str, secret: str, *, body: Any = None, timeout_s: float,
                       extra_headers: dict | None = None) -> Any:
        headers = {**_headers(secret), **(extra_headers or {})}
        try:
            async with self.session.request(
                method, url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as resp:
                raw = await read_body(resp.content, MAX_UPSTREAM_BODY)
                status = resp.status
        except BodyTooLarge as exc:
            raise UpstreamUnavailable(str(exc)) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise UpstreamUnavailable(f"{type(exc).__name__}: {exc}".strip(": ")) from exc
        if status >= 500 or status in (401, 403, 429):
            raise UpstreamUnavailable(f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            raise UpstreamUnavailable(f"HTTP {status}: answer is not JSON") from None
        if status == 404:
            return None
        if status >= 400 and not isinstance(data, dict):
            raise UpstreamUnavailable(f"HTTP {status}")
        return data

    async def submit(self, base_url: str, secret: str, path: str, body: dict, mode: str | None = None) -> SubmitResult:
        data = await self._request("POST", _route(base_url, path, mode), secret, body=body, timeout_s=SUBMIT_TIMEOUT_S)
        if not isinstance(data, dict) or "code" not in data:
            raise UpstreamUnavailable("submit answer has no code")
        try:
            code = int(data["code"])
        except (TypeError, ValueError):
            raise UpstreamUnavailable(f"submit answer has a non-numeric code {data['code']!r}") from None
        properties = data.get("properties") if isinstance(data.get("properties"), dict) else {}
        return SubmitResult(code, str(data.get("description") or ""), data.get("result"), properties)

    async def fetch(self, base_url: str, secret: str, upstream_id: str) -> dict | None:
        data = await self._request("GET", _route(base_url, f"/task/{upstream_id}/fetch", None), secret,
                                   timeout_s=FETCH_TIMEOUT_S)
        return data if isinstance(data, dict) and data.get("id") else None

    async def list_by_condition(self, base_url: str, secret: str, upstream_ids: list[str],
                                poller: str | None = None) -> list[dict]:
        # The poller names itself, so an upstream's logs (and the tests) can tell instances apart.
        extra = {"X-Mjgate-Poller": poller} if poller else None
        data = await self._request("POST", _route(base_url, "/task/list-by-condition", None), secret,
                                   body={"ids": upstream_ids}, timeout_s=FETCH_TIMEOUT_S, extra_headers=extra)
        if data is None:
            return []
        if not isinstance(data, list):
            raise UpstreamUnavailable("list-by-condition answer is not an array")
        return [item for item in data if isinstance(item, dict) and item.get("id")]

    async def image_seed(self, base_url: str, secret: str, upstream_id: str) -> dict | None:
        data = await self._request("GET", _route(base_url, f"/task/{upstream_id}/image-seed", None), secret,
                                   timeout_s=FETCH_TIMEOUT_S)
        return data if isinstance(data, dict) else None
