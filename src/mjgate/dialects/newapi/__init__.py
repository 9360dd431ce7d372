"""new-api's management dialect (SPEC §3.1): GET /api/mj/self and GET /api/mj/, its envelope."""

from mjgate.dialects.newapi.render import error_reply as render_error
from mjgate.dialects.newapi.routes import router

NAME = "newapi"
PREFIXES = ("/api/",)


def install(app) -> None:
    app.include_router(router)


__all__ = ["NAME", "PREFIXES", "install", "render_error"]
