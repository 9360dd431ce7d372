"""An account out of fast hours: fast and turbo jobs are taken, then fail; relax jobs run."""

from __future__ import annotations

import pytest

from tests.fixtures.simulator import start_simulator_process
from tests.simulator.helpers import png_base64, submit, wait_done

FAST_WAYS = [
    ("", "a fox"),  # no prefix, no flag: the account's default mode, fast
    ("/mj-fast", "a fox"),
    ("", "a fox --fast"),
    ("/mj-turbo", "a fox"),  # turbo spends fast hours too, twice as quickly
]
RELAX_WAYS = [("/mj-relax", "a fox"), ("", "a fox --relax"), ("/mj-relax", "a fox --fast")]  # the prefix wins


def run(sim, prefix: str, prompt: str) -> dict:
    answer = submit(sim, "submit/imagine", {"prompt": prompt}, prefix=prefix)
    assert answer["code"] == 1, answer  # accepted either way: Midjourney answers only once it has the job
    return wait_done(sim, answer["result"])[0]


def test_no_fast_hours_fails_fast_jobs_and_runs_relax_ones(simulator_session):
    sim = simulator_session
    sim.configure(no_fast_hours=True)
    for prefix, prompt in FAST_WAYS:
        task = run(sim, prefix, prompt)
        assert task["status"] == "FAILURE" and task["progress"] == "", (prefix, prompt)
        assert task["failReason"].startswith("Credits exhausted") and "fast hours" in task["failReason"]
        assert task["imageUrl"] is None and task["buttons"] == []
    for prefix, prompt in RELAX_WAYS:
        task = run(sim, prefix, prompt)
        assert task["status"] == "SUCCESS" and task["mode"] == "relax", (prefix, prompt)

    # Jobs that spend no GPU time are not affected.
    describe = submit(sim, "submit/describe", {"base64": png_base64()}, prefix="/mj-fast")
    assert wait_done(sim, describe["result"])[0]["status"] == "SUCCESS"

    stats = sim.stats()
    assert stats["failed_no_fast_hours"] == len(FAST_WAYS) and stats["fast_hours_left"] == 0

    sim.configure(default_mode="relax")  # an account switched to relax: no prefix now means relax
    assert run(sim, "", "a fox")["status"] == "SUCCESS"
    sim.configure(no_fast_hours=False, default_mode="fast")
    assert run(sim, "", "a fox")["status"] == "SUCCESS"
    assert sim.stats()["fast_hours_left"] is None  # no budget set: unlimited


def test_a_fast_hours_budget_runs_out(simulator_session):
    sim = simulator_session
    sim.configure(fast_hours=0.00001)  # 36 ms of GPU time: less than one job
    assert 0 < sim.stats()["fast_hours_left"] <= 0.00001
    assert run(sim, "/mj-fast", "first")["status"] == "SUCCESS"  # it had time left when it started
    assert sim.stats()["fast_hours_left"] == 0
    assert run(sim, "/mj-relax", "relax is free")["status"] == "SUCCESS"
    assert run(sim, "/mj-fast", "second")["status"] == "FAILURE"
    sim.configure(fast_hours=1.0)  # topped up
    assert 0.99 < sim.stats()["fast_hours_left"] < 1.0
    assert run(sim, "/mj-fast", "third")["status"] == "SUCCESS"


@pytest.mark.parametrize(("knob", "value"), [("default_mode", "slow"), ("fast_hours", -1), ("no_fast_hours", "maybe")])
def test_bad_fast_hour_knobs_are_refused(simulator_session, knob, value):
    resp = simulator_session.http.post("/__sim/config", json={knob: value})
    assert resp.status_code == 400 and knob in resp.json()["error"]


def test_new_knobs_from_the_command_line():
    knobs = dict(no_fast_hours=True, fast_hours=2.5, default_mode="relax", cancel_supported=False,
                 progress_images=False, first_queued_success=True, core_size=2, queue_size=4)
    with start_simulator_process(**knobs) as sim:
        config = sim.config()
        assert {k: config[k] for k in knobs} == knobs
        assert sim.stats()["fast_hours_left"] == 0  # no_fast_hours wins over the budget
