"""`mjgate worker`: the background loops without the HTTP server, sharing the app's wiring."""

from __future__ import annotations

import asyncio

import structlog

from mjgate.app import create_app
from mjgate.config import Settings

log = structlog.get_logger(__name__)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    # The app's lifespan builds exactly what the loops need (db, HTTP session, services, workers);
    # reusing it keeps one place that wires them.
    app = create_app(settings.model_copy(update={"poller_enabled": True}))
    async with app.router.lifespan_context(app):
        log.info("worker running", owner=app.state.workers.owner)
        await stop.wait()
