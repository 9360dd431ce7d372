"""Outbound notifyHook posts: fire-and-forget, but in order per task."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp

NOTIFY_TIMEOUT_S = 3.0


class Notifier:
    def __init__(self, stats: Counter) -> None:
        self._stats = stats
        self._session: aiohttp.ClientSession | None = None
        # The newest post per task: the next one waits for it, so a receiver sees a task's
        # changes in the order they happened even when posts overlap.
        self._tails: dict[str, asyncio.Task] = {}

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=NOTIFY_TIMEOUT_S))

    async def close(self) -> None:
        pending = list(self._tails.values())
        for post in pending:
            post.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._tails.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def send(self, key: str, url: str, payload: dict) -> None:
        if self._session is None:
            return
        previous = self._tails.get(key)
        post = asyncio.get_running_loop().create_task(self._post(url, payload, previous))
        self._tails[key] = post
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
        try:
            async with self._session.post(url, json=payload) as resp:
                await resp.read()
                ok = resp.status < 400
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            ok = False
        self._stats["notify_sent" if ok else "notify_failed"] += 1
