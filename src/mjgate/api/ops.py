"""Operator endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


def redis_status(state) -> str:
    """"off" (none configured), "ok", or "degraded" (configured but unreachable: events and rate
    limits are per process until it returns). Redis is optional, so degraded is still ready."""
    parts = [getattr(state, "events", None), getattr(state, "acedata_rate_limiter", None)]
    statuses = {getattr(part, "status", "off") for part in parts}
    if "degraded" in statuses:
        return "degraded"
    return "ok" if "ok" in statuses else "off"


@router.get("/readyz")
async def readyz(request: Request):
    redis = redis_status(request.app.state)
    try:
        await request.app.state.db.ping()
    except Exception as exc:  # readiness reports the failure instead of raising it
        return JSONResponse({"status": "unavailable", "database": str(exc)[:200], "redis": redis}, status_code=503)
    return {"status": "ok", "database": request.app.state.db.dialect, "redis": redis}


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
