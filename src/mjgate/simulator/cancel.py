"""POST /mj/task/{id}/cancel, the route midjourney-proxy forks expose (trueai-org's TaskController).

trueai-org's own route answers HTTP 200 with an empty body whatever happened, and fails the task
(FAILURE, reason "取消任务"). The simulator is more talkative so a gateway can tell the outcomes
apart: every answer is HTTP 200 in the submit routes' `{code, description, result, properties}`
shape, and the task ends in CANCEL (midjourney-proxy's TaskStatus has it) with its notifyHook
called. With `cancel_supported` off the route is a plain 404, like an upstream without it.
"""

from __future__ import annotations

from aiohttp import web

from .httputil import json_reply
from .runtime import SIM
from .state import CANCELLABLE


def _answer(code: int, description: str, result: str | None = None, **properties) -> web.Response:
    return json_reply({"code": code, "description": description, "result": result, "properties": properties})


async def cancel(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    if not sim.config.cancel_supported:
        return web.Response(status=404, text="404: Not Found")  # what any unknown route answers
    task_id = request.match_info["task_id"]
    task = sim.store.get(task_id)
    if task is None:
        # Not a 404: that answer means "this upstream cannot cancel" (see above).
        return _answer(3, f"task {task_id} does not exist or has expired")
    if task.status not in CANCELLABLE:
        return _answer(4, f"task {task.id} is {task.status} and can no longer be cancelled", task.id,
                       status=task.status)
    was = task.status
    sim.store.cancel(task)
    return _answer(1, "Cancelled", task.id, status="CANCEL", previousStatus=was)
