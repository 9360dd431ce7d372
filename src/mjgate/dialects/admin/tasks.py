"""Admin actions on one task (SPEC §4): POST /api/admin/tasks/{mj_id}/refund | fail | repoll, and
GET /api/admin/audit for what admins did. Console auth and the console's CSRF guard apply."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mjgate.api.routing import dialect_route
from mjgate.dialects.admin.routes import Admin
from mjgate.dialects.console.csrf import csrf_guard, ok
from mjgate.dialects.newapi.render import error_reply
from mjgate.audit import repository as audit
from mjgate.tasks import admin as task_admin

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(csrf_guard)],
                   route_class=dialect_route(error_reply))


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field("", max_length=500)


@router.post("/tasks/{mj_id}/refund", summary="Refund a task's charge (once)")
async def refund_task(mj_id: str, request: Request, admin: Admin, body: Reason):
    return ok(await task_admin.refund(request.app.state.db, admin.id, mj_id, body.reason or "by hand"))


@router.post("/tasks/{mj_id}/fail", summary="Fail an unfinished task now (and refund it)")
async def fail_task(mj_id: str, request: Request, admin: Admin, body: Reason):
    state = request.app.state
    return ok(await task_admin.force_fail(state.db, admin.id, mj_id, body.reason or "by hand"))


@router.post("/tasks/{mj_id}/repoll", summary="Poll an unfinished task again now")
async def repoll_task(mj_id: str, request: Request, admin: Admin):
    result = await task_admin.repoll(request.app.state.db, admin.id, mj_id)
    workers = request.app.state.workers
    if workers is not None:
        workers.poller.wake.set()
    return ok(result)


@router.get("/audit", summary="What administrators did to tasks, newest first")
async def audit_log(request: Request, admin: Admin, p: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                    page_size: Annotated[int, Query(ge=1, le=100)] = 20, target: str | None = None):
    async with request.app.state.db.read() as session:
        rows, total = await audit.page(session, offset=(p - 1) * page_size, limit=page_size, target=target)
        items = [{"id": r.id, "actor_user_id": r.actor_user_id, "action": r.action, "target": r.target,
                  "detail": r.detail, "created_at": r.created_at} for r in rows]
    return ok({"items": items, "total": total, "page": p, "page_size": page_size})
