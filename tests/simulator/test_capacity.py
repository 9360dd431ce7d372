"""One simulator process = one midjourney-proxy account: core_size run, queue_size wait, the rest 23."""

from __future__ import annotations

from tests.simulator.helpers import fetch, finish, imagine, png_base64, press, submit, wait_done, wait_status

SLOW = 30.0  # seconds per step: nothing finishes unless a test finishes it


def test_core_three_queue_two_answers_positions_then_23(simulator_session):
    sim = simulator_session
    sim.configure(core_size=3, queue_size=2, step_seconds=SLOW)
    answers = [submit(sim, "submit/imagine", {"prompt": f"fox {i}"}) for i in range(6)]

    assert [a["code"] for a in answers] == [1, 1, 1, 22, 22, 23]
    assert [a["properties"].get("numberOfQueues") for a in answers[3:5]] == [0, 1]
    assert answers[3]["description"] == "In queue, there are 0 tasks ahead"
    assert answers[4]["description"] == "In queue, there are 1 tasks ahead"
    assert answers[5]["result"] is None and answers[5]["description"] == "Queue is full, please try again later"
    ids = [a["result"] for a in answers[:5]]
    assert [fetch(sim, i).json()["status"] for i in ids[3:]] == ["NOT_START", "NOT_START"]

    stats = sim.stats()
    assert (stats["running"], stats["queued"], stats["active"]) == (3, 2, 5)
    assert stats["max_running_seen"] == 3 and stats["refused_queue_full"] == 1

    # A finished task hands its slot to the oldest waiting one, and only to it (FIFO).
    assert finish(sim, ids[1]) == "SUCCESS"
    assert fetch(sim, ids[3]).json()["status"] in ("SUBMITTED", "IN_PROGRESS")
    assert fetch(sim, ids[4]).json()["status"] == "NOT_START"
    assert (sim.stats()["running"], sim.stats()["queued"]) == (3, 1)
    # The queue has room again: the next submit waits (1 ahead) instead of being refused.
    again = submit(sim, "submit/imagine", {"prompt": "fox again"})
    assert again["code"] == 22 and again["properties"]["numberOfQueues"] == 1

    assert finish(sim, ids[0]) == "SUCCESS"
    assert fetch(sim, ids[4]).json()["status"] in ("SUBMITTED", "IN_PROGRESS")
    assert sim.finish_all() == 4
    stats = sim.stats()
    assert (stats["running"], stats["queued"], stats["max_running_seen"], stats["refused_queue_full"]) == (0, 0, 3, 1)


def test_waiting_tasks_start_as_running_ones_finish_on_their_own(simulator_session):
    sim = simulator_session
    sim.configure(core_size=1, queue_size=2)
    ids = [submit(sim, "submit/imagine", {"prompt": f"in turn {i}"})["result"] for i in range(3)]
    done = [wait_done(sim, i)[0] for i in ids]
    assert [t["status"] for t in done] == ["SUCCESS"] * 3
    # One slot: each started only once the one before it had finished, in submission order.
    for before, after in zip(done, done[1:]):
        assert after["startTime"] >= before["finishTime"]
    assert sim.stats()["max_running_seen"] == 1


def test_buttons_and_modals_take_slots_like_any_submit(simulator_session):
    sim = simulator_session
    grid = imagine(sim)
    upscale = wait_done(sim, press(sim, grid, "MJ::JOB::upsample::1::")["result"])[0]
    sim.configure(core_size=1, queue_size=1, step_seconds=SLOW)

    running = press(sim, grid, "MJ::JOB::upsample::2::")
    waiting = press(sim, grid, "MJ::JOB::variation::3::")
    refused = press(sim, grid, "MJ::JOB::upsample::3::")
    assert (running["code"], waiting["code"], refused["code"]) == (1, 22, 23)

    # A modal waiting for its confirmation holds no slot; its confirmation is a submit like others.
    pending = press(sim, upscale, "MJ::Inpaint::")
    assert pending["code"] == 21 and sim.stats()["active"] == 2
    body = {"taskId": pending["result"], "prompt": "a hat", "maskBase64": png_base64()}
    assert submit(sim, "submit/modal", body)["code"] == 23
    assert fetch(sim, pending["result"]).json()["status"] == "MODAL"  # can be confirmed again later

    finish(sim, running["result"])  # the variation moves up; the queue has one place again
    confirmed = submit(sim, "submit/modal", body)
    assert confirmed["code"] == 22 and confirmed["properties"]["numberOfQueues"] == 0
    assert sim.stats()["refused_queue_full"] == 2
    sim.finish_all()
    assert wait_done(sim, pending["result"])[0]["status"] == "SUCCESS"


def test_first_queued_success_answers_like_midjourney_proxy(simulator_session):
    sim = simulator_session
    sim.configure(core_size=1, queue_size=2, step_seconds=SLOW, first_queued_success=True)
    answers = [submit(sim, "submit/imagine", {"prompt": f"quirk {i}"}) for i in range(3)]
    # midjourney-proxy counts only waiting tasks, and answers "success" when that count is 0.
    assert [a["code"] for a in answers] == [1, 1, 22]
    assert answers[2]["properties"]["numberOfQueues"] == 1
    assert fetch(sim, answers[1]["result"]).json()["status"] == "NOT_START"


def test_running_count_stays_live_while_tasks_progress(simulator_session):
    sim = simulator_session
    sim.configure(core_size=2, queue_size=5, step_seconds=SLOW)
    ids = [submit(sim, "submit/imagine", {"prompt": f"live {i}"})["result"] for i in range(2)]
    wait_status(sim, ids[0], "IN_PROGRESS")
    assert (sim.stats()["running"], sim.stats()["queued"]) == (2, 0)
    finish(sim, ids[0])
    assert (sim.stats()["running"], sim.stats()["queued"]) == (1, 0)
    # Existing counters are still there beside the new ones.
    assert {"requests", "submits", "fetches", "tasks", "active", "images_served"} <= set(sim.stats())
