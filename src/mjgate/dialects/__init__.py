"""The faces clients speak, registered in one place.

Each dialect is a package exposing NAME, PREFIXES (the paths it owns), install(app) (its routes and
middlewares), render_error(request, error) (its error envelope) and, when its clients get
callbacks, webhook_payload(links) -> (task -> JSON). The core never imports a dialect.
"""

from __future__ import annotations

from mjgate.dialects import acedata, admin, console, mjproxy, newapi

DIALECTS = (newapi, mjproxy, acedata, console, admin)
# Longest prefix first, so /api/console/ is the console's and not new-api's /api/.
_BY_PREFIX = sorted(((prefix, d) for d in DIALECTS for prefix in d.PREFIXES), key=lambda p: -len(p[0]))


def install(app) -> None:
    for dialect in DIALECTS:
        dialect.install(app)


def webhook_payloads(links) -> dict:
    """dialect name -> (task -> the JSON its clients' callbacks receive)."""
    return {d.NAME: d.webhook_payload(links) for d in DIALECTS if hasattr(d, "webhook_payload")}


def owner_of(path: str):
    """The dialect whose envelope an answer on `path` uses (for requests no route matched), or None."""
    for prefix, dialect in _BY_PREFIX:
        if path.startswith(prefix):
            return dialect
    return None
