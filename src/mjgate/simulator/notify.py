"""Outbound notifyHook posts: fire-and-forget, but in order per task, retried like a real upstream.

A post that times out, cannot connect or gets a 5xx/429 is tried again (RETRY_DELAYS_S); any
other answer is final. Counters: notify_sent, notify_failed, and notify_failed:<reason> (http_403,
TimeoutError, ...) for each post that finally failed, notify_retried for each retry.

A receiver that handled a post but answered too late sees it again: notifications are states,
not increments, so a receiver applies them idempotently (the gateway does).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp

NOTIFY_TIMEOUT_S = 10.0
RETRY_DELAYS_S = (0.5, 1.0, 2.0)
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class Notifier:
    def __init__(self, stats: Counter) -> None:
        self._stats = stats
        self._session: aiohttp.ClientSession | None = None
        # The newest post per task: the next one waits for it, so a receiver sees a task's
        # changes in the order they happened even when posts overlap.
        self._tails: dict[str, asyncio.Task] = {}
        self._pending: set[asyncio.Task] = set()  # every post not finished yet

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=NOTIFY_TIMEOUT_S))

    async def close(self) -> None:
        pending = list(self._pending)
        for post in pending:
            post.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._tails.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def cancel_pending(self) -> None:
        for post in list(self._pending):
            post.cancel()
        self._pending.clear()
        self._tails.clear()

    def send(self, key: str, url: str, payload: dict) -> None:
        if self._session is None:
            return
        previous = self._tails.get(key)
        post = asyncio.get_running_loop().create_task(self._post(url, payload, previous))
        self._tails[key] = post
        self._pending.add(post)
        post.add_done_callback(self._pending.discard)
        post.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: str, done: asyncio.Task) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]

    async def _post(self, url: str, payload: dict, previous: asyncio.Task | None) -> None:
        if previous is not None:
            # wait() neither raises the previous post's outcome nor cancels it.
            await asyncio.wait([previous])
        if self._session is None:
            return
        for delay in (*RETRY_DELAYS_S, None):
            ok, reason, retry = await self._attempt(url, payload)
            if ok or not retry or delay is None or self._session is None:
                break
            self._stats["notify_retried"] += 1
            await asyncio.sleep(delay)
        self._stats["notify_sent" if ok else "notify_failed"] += 1
        if not ok:
            self._stats[f"notify_failed:{reason}"] += 1

    async def _attempt(self, url: str, payload: dict) -> tuple[bool, str, bool]:
        """(delivered, reason, worth retrying)."""
        try:
            async with self._session.post(url, json=payload) as resp:
                await resp.read()
                return resp.status < 400, f"http_{resp.status}", resp.status in RETRIED_STATUSES
        except ValueError as exc:  # a URL aiohttp refuses: retrying will not help
            return False, type(exc).__name__, False
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return False, type(exc).__name__, True
