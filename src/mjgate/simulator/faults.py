"""The one middleware: log the request, then apply the fault knobs and the secret check.

Control routes (/__sim/...) are neither logged nor faulted, so tests can always inspect and steer
the simulator, and their own calls do not pollute the log they read.
"""

from __future__ import annotations

import asyncio
import hmac
import time

from aiohttp import web

from .httputil import MEDIA_PATHS, json_reply, logged_json, read_json, split_mode
from .runtime import SIM

# Looks like the start of a submit answer, then stops: a truncated or garbled upstream reply.
MALFORMED_BODY = b'{"code": 1, "result": "17\x00\xff<html>502 Bad Gat'


@web.middleware
async def simulator_middleware(request: web.Request, handler) -> web.StreamResponse:
    sim = request.app[SIM]
    sim.learn_base_url(request)
    if request.path.startswith("/__sim/"):
        return await handler(request)

    mode, path = split_mode(request.path)
    body = await read_json(request)
    sim.stats["requests"] += 1
    sim.requests.append(
        {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "mode": mode,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "json": logged_json(body),
            "ts": int(time.time() * 1000),
        }
    )
    if not path.startswith("/mj/"):
        return await handler(request)

    cfg = sim.config
    if cfg.slow_seconds > 0:
        await asyncio.sleep(cfg.slow_seconds)
    if sim.chance(cfg.error_rate):
        sim.stats["injected_errors"] += 1
        return web.Response(status=500, text="Internal Server Error (simulated)")
    if sim.chance(cfg.malformed_rate):
        sim.stats["injected_malformed"] += 1
        return web.Response(status=200, body=MALFORMED_BODY, content_type="application/json")
    if cfg.secret and not path.startswith(MEDIA_PATHS):
        given = request.headers.get("mj-api-secret", "")
        if not hmac.compare_digest(given.encode(), cfg.secret.encode()):
            return json_reply({"code": 401, "description": "mj-api-secret is missing or wrong"}, 401)
    return await handler(request)
