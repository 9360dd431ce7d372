"""Instant updates: upstream channels POST task changes to the gateway's own signed notify URL.

The URL names our task and the channel it was sent to, signed with an HMAC, so only the upstream
the gateway gave it to can push changes for that task; the body must name the task's upstream id
(or, for a task whose submit answer was lost, the job the gateway adopts). The change goes
through the same transition function as the poller, which stays the safety net.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from mjgate.api.payloads import json_object
from mjgate.api.routing import dialect_route
from mjgate.auth import keyring
from mjgate.auth.credentials import sign, verify_any
from mjgate.dialects.mjproxy.render import error_reply
from mjgate.errors import Forbidden

router = APIRouter(tags=["upstream callbacks"], include_in_schema=False, route_class=dialect_route(error_reply))


def _message(mj_id: str, channel_id: int | None) -> str:
    return f"notify:{mj_id}" if channel_id is None else f"notify:{mj_id}:{channel_id}"


def notify_path(secret_key: str, mj_id: str, channel_id: int | None = None) -> str:
    query = f"sig={sign(secret_key, _message(mj_id, channel_id))}"
    if channel_id is not None:
        query = f"c={channel_id}&{query}"
    return f"/mj/notify/{mj_id}?{query}"


@router.post("/mj/notify/{mj_id}")
async def upstream_notify(mj_id: str, request: Request):
    state = request.app.state
    raw_channel = request.query_params.get("c")
    channel_id = int(raw_channel) if raw_channel and raw_channel.isdigit() and len(raw_channel) < 19 else None
    if raw_channel is not None and channel_id is None:
        raise Forbidden("bad notify signature")
    keys = state.keyring.accepted(keyring.NOTIFY_URL)
    if not verify_any(keys, _message(mj_id, channel_id), request.query_params.get("sig", "")):
        raise Forbidden("bad notify signature")
    await state.tasks.pushed(mj_id, channel_id, await json_object(request))
    return {"code": 1, "description": "ok"}
