"""The web console's API dialect: session, tasks, submits, dashboards and export (new-api's envelope, CSRF-guarded)."""

from mjgate.dialects.console import dashboard, routes, session, submits
from mjgate.dialects.newapi.render import error_reply as render_error

NAME = "console"
PREFIXES = ("/api/console/",)


def install(app) -> None:
    app.include_router(session.router)
    app.include_router(routes.router)
    app.include_router(submits.router)
    app.include_router(dashboard.router)


__all__ = ["NAME", "PREFIXES", "install", "render_error"]
