"""The ASGI application: routers, error envelopes, and the lifespan that owns every resource."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from mjgate import __version__
from mjgate.api import envelopes, newapi, ops
from mjgate.config import Settings, get_settings
from mjgate.db import Database


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = Database(settings.database_url, pool_size=settings.db_pool_size,
                      pg_statement_cache_size=settings.pg_statement_cache_size)
        app.state.db = db
        try:
            yield
        finally:
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
    return app
