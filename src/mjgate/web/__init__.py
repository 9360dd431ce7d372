"""The web console: static HTML, CSS and plain JavaScript modules served by the gateway itself.

No build step: the browser loads the ES modules under /assets/js as they are in the package.
`/` serves the single page; the console's API lives in mjgate.dialects.console and mjgate.dialects.admin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The page only talks to its own origin; images and videos may come from other hosts (upstream video URLs).
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob: http: https:; media-src 'self' http: https:; style-src 'self'; "
        "script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # The page is tiny; always revalidate so a deploy is picked up at once.
    "Cache-Control": "no-cache",
}


class _Assets(StaticFiles):
    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"  # revalidate (ETag) so a deploy shows at once
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    app.mount("/assets", _Assets(directory=STATIC_DIR, check_dir=True), name="console-assets")

    @app.get("/", include_in_schema=False)
    async def console_page():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                            headers=_SECURITY_HEADERS)
