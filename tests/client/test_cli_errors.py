"""Errors of the client commands: one clear line on stderr with the gateway's message, exit status 1."""

from __future__ import annotations

import json

from tests.fixtures.live import free_port


def one_line(done) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def last_line(done) -> str:
    """For waiting commands: progress lines come first on stderr (not a terminal), the error last."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], done.stderr
    assert "Traceback" not in done.stderr
    return lines[-1]


def test_bad_key(mjgate):
    done = mjgate.run("imagine", "a fox", env={"MJGATE_KEY": "sk-wrong"})
    assert one_line(done) == "error: invalid API key (HTTP 401)"
    assert done.stdout == ""


def test_no_quota(mjgate, world):
    done = mjgate.run("imagine", "a fox", "--wait", env={"MJGATE_KEY": world.broke_key})
    line = one_line(done)
    assert line.startswith("error: insufficient quota"), line


def test_unknown_task(mjgate):
    for command in ("task", "wait", "download", "action"):
        args = [command, "4242424242424242"] + (["U1"] if command == "action" else [])
        assert one_line(mjgate.run(*args)) == "error: task 4242424242424242 not found (HTTP 404)"


def test_errors_in_json_mode_are_one_document_too(mjgate, world):
    done = mjgate.run("task", "4242424242424242", "--json")
    assert one_line(done) == "error: task 4242424242424242 not found (HTTP 404)"
    assert json.loads(done.stdout) == {"error": {"type": "NotFoundError", "status": 404,
                                                 "message": "task 4242424242424242 not found (HTTP 404)"}}
    quota = mjgate.run("imagine", "a fox", "--json", env={"MJGATE_KEY": world.broke_key})
    assert json.loads(quota.stdout)["error"]["type"] == "QuotaError"


def test_refused_prompt_failed_task_and_missing_button(mjgate, sim_knobs):
    banned = mjgate.run("imagine", "something nsfw-banned")  # the simulator's banned word: code 24
    assert one_line(banned) == "error: May contain sensitive words (code 24)"

    sim_knobs.configure(failure_rate=1.0)
    failed = mjgate.run("imagine", "doomed", "--wait")
    line = last_line(failed)
    assert line.startswith("error: task ") and " ended FAILURE: " in line
    assert failed.stdout.splitlines()[0].endswith("FAILURE (IMAGINE)")  # the task is still shown
    sim_knobs.configure(failure_rate=0.0)

    grid = json.loads(mjgate.run("imagine", "a grid", "--wait", "--json").stdout)
    missing = mjgate.run("action", grid["id"], "pan-left")
    assert one_line(missing) == (f"error: task {grid['id']} has no 'pan-left' button "
                                 "(it offers: U1 U2 U3 U4 reroll V1 V2 V3 V4)")


def test_not_logged_in_and_unreachable(mjgate):
    nothing = mjgate.run("tasks", env={"MJGATE_URL": "", "MJGATE_KEY": ""})
    assert one_line(nothing) == ("error: not logged in: run `mjgate login --url URL --key sk-...` "
                                 "(or set MJGATE_URL and MJGATE_KEY)")
    nobody = f"http://127.0.0.1:{free_port()}"  # a port just freed: nothing listens there
    down = mjgate.run("tasks", env={"MJGATE_URL": nobody})
    assert one_line(down).startswith(f"error: cannot reach the gateway at {nobody}")


def test_usage_errors_are_refused_before_any_request(mjgate):
    wrong_mode = mjgate.run("imagine", "a fox", "--mode", "warp")
    assert wrong_mode.returncode == 2 and "warp" in wrong_mode.stderr
    missing_file = mjgate.run("imagine", "a fox", "--image", "no-such.png")
    assert one_line(missing_file).startswith("error: cannot read image no-such.png")
    one_image = mjgate.run("blend", "only-one.png")
    assert one_line(one_image) == "error: blend takes 2 to 5 images, got 1"
