"""The ASGI application: the dialects' routes, the shared endpoints, and the lifespan that opens
every resource (mjgate.resources) and closes it on shutdown."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from mjgate import __version__, dialects, web
from mjgate.api import callbacks, envelopes, events, images, ops
from mjgate.api.inputs import InputGuard
from mjgate.auth.keyring import Keyring
from mjgate.api.middleware import RateLimitHeaders
from mjgate.config import Settings, get_settings
from mjgate.resources import opened

# What the endpoints read from request.app.state, all owned by the resources.
STATE = ("keyring", "db", "http", "events", "upstream", "reference", "tasks", "links", "notify_key", "key_cache",
         "rate_limiter", "image_copier", "image_sizes", "workers", "gateway_images", "translator")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with opened(settings, background=settings.poller_enabled) as resources:
            app.state.resources = resources
            for name in STATE:
                setattr(app.state, name, getattr(resources, name))
            yield

    app = FastAPI(
        title="mjgate",
        version=__version__,
        description="Midjourney task gateway: new-api management API, midjourney-proxy API and AceData-style API.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.secret_key = settings.resolved_secret_key()
    app.state.keyring = Keyring(app.state.secret_key)  # the resources' own replaces it on start (same master)
    envelopes.install(app)
    app.add_middleware(RateLimitHeaders)
    # Inside the dialects' own middlewares (AceData's trace id), outside every route.
    app.add_middleware(InputGuard)
    app.include_router(ops.router)
    app.include_router(images.router)
    app.include_router(events.router)
    app.include_router(events.relay_router)
    app.include_router(callbacks.router)
    dialects.install(app)
    web.install(app)
    return app
