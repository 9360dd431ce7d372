"""The ASGI application: routers, error envelopes, and the lifespan that owns every resource."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI

from mjgate import __version__
import aiohttp

from mjgate.api import acedata, callbacks, envelopes, events, images, mjproxy, newapi, ops
from mjgate.api import admin as admin_api, admin_tasks, console as console_api
from mjgate import web
from mjgate.auth.relay import KeyCache
from mjgate.config import Settings, get_settings
from mjgate.db import Database
from mjgate.events import EventBus
from mjgate.images.store import ImageCopier, build_image_store
from mjgate.tasks.service import TaskService
from mjgate.upstream.client import UpstreamClient
from mjgate.workers import BackgroundWorkers


def _callback_url_factory(settings: Settings, secret_key: str):
    def callback_url(task) -> str | None:
        base = (settings.callback_url or settings.public_url or task.public_base or "").rstrip("/")
        return base + callbacks.notify_path(secret_key, task.mj_id) if base else None

    return callback_url


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = Database(settings.database_url, pool_size=settings.db_pool_size,
                      pg_statement_cache_size=settings.pg_statement_cache_size)
        app.state.db = db
        app.state.key_cache = KeyCache(settings.relay_auth_cache_s)
        # One HTTP session per process for every upstream call and image relay.
        app.state.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, limit_per_host=100))
        app.state.events = EventBus(settings.redis_url)
        await app.state.events.start()
        app.state.tasks = TaskService(
            db, UpstreamClient(app.state.http), app.state.events, secret_key=app.state.secret_key,
            image_url_ttl_s=settings.image_url_ttl_s, public_url=settings.public_url,
            callback_url=_callback_url_factory(settings, app.state.secret_key) if settings.upstream_callbacks else None,
        )
        image_store = build_image_store(settings, app.state.http)
        if image_store is not None:
            app.state.tasks.image_copier = ImageCopier(db, app.state.http, image_store)
        health_stop = asyncio.Event()
        health_loop = asyncio.create_task(app.state.tasks.health.run(health_stop), name="mjgate-channel-health")
        app.state.workers = None
        if settings.poller_enabled:
            app.state.workers = BackgroundWorkers(db, app.state.tasks, app.state.http, settings, app.state.secret_key)
            app.state.workers.start()
        try:
            yield
        finally:
            if app.state.workers is not None:
                await app.state.workers.stop()
            if app.state.tasks.image_copier is not None:
                await app.state.tasks.image_copier.drain()
            if image_store is not None:
                await image_store.close()
            health_stop.set()
            await health_loop  # its last pass flushes what is still buffered
            await app.state.events.stop()
            await app.state.http.close()
            await db.dispose()

    app = FastAPI(
        title="mjgate",
        version=__version__,
        description="Midjourney task gateway: new-api management API, midjourney-proxy API and AceData-style API.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.secret_key = settings.resolved_secret_key()
    envelopes.install(app)
    app.include_router(ops.router)
    app.include_router(newapi.router)
    app.include_router(images.router)
    app.include_router(events.router)
    app.include_router(callbacks.router)
    mjproxy.install(app)
    acedata.install(app)
    app.include_router(console_api.router)
    app.include_router(admin_api.router)
    app.include_router(admin_tasks.router)
    web.install(app)
    return app
