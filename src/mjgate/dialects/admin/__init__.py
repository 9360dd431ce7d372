"""The admin API the console uses (users, keys, channels, prices, ledger, task acts, audit,
moderation)."""

from mjgate.dialects.admin import moderation, price_rules, routes, tasks
from mjgate.dialects.newapi.render import error_reply as render_error

NAME = "admin"
PREFIXES = ("/api/admin/",)


def install(app) -> None:
    app.include_router(routes.router)
    app.include_router(tasks.router)
    app.include_router(moderation.router)
    app.include_router(price_rules.router)


__all__ = ["NAME", "PREFIXES", "install", "render_error"]
