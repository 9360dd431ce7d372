"""The AceData-style dialect (SPEC §3.3): routes, request bodies, renderers, webhook payload, errors."""

from mjgate.dialects.acedata.middleware import TraceIdMiddleware
from mjgate.dialects.acedata.render import error_reply as render_error
from mjgate.dialects.acedata.routes import make_router, webhook_payload

NAME = "acedata"
PREFIXES = ("/midjourney",)


def install(app) -> None:
    app.include_router(make_router())
    app.add_middleware(TraceIdMiddleware)


__all__ = ["NAME", "PREFIXES", "install", "render_error", "webhook_payload"]
