"""Operator endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request):
    try:
        await request.app.state.db.ping()
    except Exception as exc:  # readiness reports the failure instead of raising it
        return JSONResponse({"status": "unavailable", "database": str(exc)[:200]}, status_code=503)
    return {"status": "ok", "database": request.app.state.db.dialect}


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
