"""POST /mj/task/{id}/cancel: queued, running, modal, finished, unknown, and an upstream without it."""

from __future__ import annotations

import asyncio

import httpx

from tests.simulator.helpers import (
    cancel,
    fetch,
    hook_receiver,
    imagine,
    press,
    submit,
    wait_done,
    wait_status,
)

SLOW = 30.0


async def _until(check, timeout_s: float = 5.0):
    for _ in range(int(timeout_s / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_cancel_a_queued_and_a_running_task(simulator_session):
    sim = simulator_session
    sim.configure(core_size=1, queue_size=2, step_seconds=SLOW)
    async with hook_receiver() as (hook, received):
        running, queued, next_up = (
            submit(sim, "submit/imagine", {"prompt": p, "notifyHook": hook})["result"] for p in ("one", "two", "three")
        )
        wait_status(sim, running, "IN_PROGRESS", "20%")

        answer = cancel(sim, queued)
        assert answer.status_code == 200
        assert answer.json() == {"code": 1, "description": "Cancelled", "result": queued,
                                 "properties": {"status": "CANCEL", "previousStatus": "NOT_START"}}
        gone = fetch(sim, queued).json()
        assert gone["status"] == "CANCEL" and gone["progress"] == "0%" and gone["finishTime"]
        queue = [t["id"] for t in sim.http.get("/mj/task/queue", headers=sim.headers).json()]
        assert queue == [running, next_up]

        answer = cancel(sim, running).json()
        assert answer["code"] == 1 and answer["properties"]["previousStatus"] == "IN_PROGRESS"
        stopped = fetch(sim, running).json()
        # Progress stays where the job was stopped; no picture, no buttons.
        assert (stopped["status"], stopped["progress"]) == ("CANCEL", "20%")
        assert stopped["imageUrl"] is None and stopped["buttons"] == []
        assert stopped["failReason"] == "Cancelled"
        # Its slot went to the task that waited behind the cancelled one.
        assert fetch(sim, next_up).json()["status"] in ("SUBMITTED", "IN_PROGRESS")

        stats = sim.stats()
        assert (stats["cancelled"], stats["running"], stats["queued"]) == (2, 1, 0)
        await _until(lambda: sum(m["status"] == "CANCEL" for m in received) == 2)
    last = {m["id"]: m for m in received}  # the newest post per task: posts are in order per task
    assert last[queued]["status"] == last[running]["status"] == "CANCEL"
    assert last[running]["progress"] == "20%"


def test_cancel_a_modal_task_and_through_a_mode_prefix(simulator_session):
    sim = simulator_session
    upscale = wait_done(sim, press(sim, imagine(sim), "MJ::JOB::upsample::1::")["result"])[0]
    modal = press(sim, upscale, "MJ::Inpaint::")["result"]
    answer = cancel(sim, modal, prefix="/mj-relax").json()
    assert answer["code"] == 1 and answer["properties"]["previousStatus"] == "MODAL"
    assert fetch(sim, modal).json()["status"] == "CANCEL"
    assert submit(sim, "submit/modal", {"taskId": modal})["code"] == 4  # no longer waiting for a modal


def test_finished_and_unknown_tasks_are_refused(simulator_session):
    sim = simulator_session
    done = imagine(sim)
    answer = cancel(sim, done["id"])
    assert answer.status_code == 200
    assert answer.json() == {"code": 4, "description": f"task {done['id']} is SUCCESS and can no longer be cancelled",
                             "result": done["id"], "properties": {"status": "SUCCESS"}}
    assert fetch(sim, done["id"]).json()["status"] == "SUCCESS"

    sim.configure(step_seconds=SLOW)
    once = submit(sim, "submit/imagine", {"prompt": "twice"})["result"]
    assert cancel(sim, once).json()["code"] == 1
    assert cancel(sim, once).json()["code"] == 4  # CANCEL is final too

    unknown = cancel(sim, "1234567890123456")
    assert unknown.status_code == 200  # a 404 would mean "this upstream cannot cancel"
    assert unknown.json()["code"] == 3 and "1234567890123456" in unknown.json()["description"]
    assert sim.stats()["cancelled"] == 1


def test_an_upstream_without_cancel_answers_404(simulator_session):
    sim = simulator_session
    sim.configure(cancel_supported=False, step_seconds=SLOW)
    task_id = submit(sim, "submit/imagine", {"prompt": "keep going"})["result"]
    answer = cancel(sim, task_id)
    assert answer.status_code == 404
    assert fetch(sim, task_id).json()["status"] in ("SUBMITTED", "IN_PROGRESS", "NOT_START")
    # The secret is still checked first, as on every /mj route.
    assert httpx.post(sim.url(f"/mj/task/{task_id}/cancel")).status_code == 401
