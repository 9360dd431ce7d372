"""`mjgate worker`: the background loops (poller, webhooks) without the HTTP server."""

from __future__ import annotations

import asyncio

import structlog

from mjgate.config import Settings
from mjgate.resources import opened

log = structlog.get_logger(__name__)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    async with opened(settings, background=True) as resources:
        log.info("worker running", owner=resources.workers.owner)
        await stop.wait()
