"""Instant updates: upstream channels POST task changes to the gateway's own signed notify URL.

The URL carries an HMAC of the task id, so only the upstream the gateway gave it to can push
changes for that task; the body must also name the task's upstream id. The change goes through
the same transition function as the poller, which stays the safety net.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from mjgate.api.payloads import json_object
from mjgate.auth.credentials import sign, verify_signature
from mjgate.errors import Forbidden, NotFound
from mjgate.tasks import repository

router = APIRouter(tags=["upstream callbacks"], include_in_schema=False)


def notify_path(secret_key: str, mj_id: str) -> str:
    return f"/mj/notify/{mj_id}?sig={sign(secret_key, 'notify:' + mj_id)}"


@router.post("/mj/notify/{mj_id}")
async def upstream_notify(mj_id: str, request: Request):
    state = request.app.state
    if not verify_signature(state.secret_key, "notify:" + mj_id, request.query_params.get("sig", "")):
        raise Forbidden("bad notify signature")
    snap = await json_object(request)
    async with state.db.write() as session:
        task = await repository.get_by_mj_id(session, mj_id)
        if task is None:
            raise NotFound("unknown task")
        if str(snap.get("id")) != task.upstream_id:
            raise Forbidden("the notification names another task")
        change = await state.tasks.apply_snapshot(session, task, snap)
    if change.changed:
        await state.tasks.changed(change.task)
    return {"code": 1, "description": "ok"}
