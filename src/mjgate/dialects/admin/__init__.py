"""The admin API the console uses (users, keys, channels, prices, ledger, task acts, audit)."""

from mjgate.dialects.admin import routes, tasks
from mjgate.dialects.newapi.render import error_reply as render_error

NAME = "admin"
PREFIXES = ("/api/admin/",)


def install(app) -> None:
    app.include_router(routes.router)
    app.include_router(tasks.router)


__all__ = ["NAME", "PREFIXES", "install", "render_error"]
