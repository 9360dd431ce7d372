"""`mjgate imagine --wait` in a pseudo-terminal, as a person sees it: the live progress bar, and Ctrl-C."""

from __future__ import annotations

import re

import pexpect

from mjgate.client import Client

PERCENT = re.compile(r"(\d{1,3})%")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def spawn(mjgate, *args: str) -> pexpect.spawn:
    env = {**mjgate.env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "30"}
    env.pop("NO_COLOR", None)
    argv = mjgate.argv(*args)
    return pexpect.spawn(argv[0], argv[1:], env=env, cwd=str(mjgate.cwd), encoding="utf-8", timeout=60,
                         dimensions=(30, 120))


def test_progress_bar_shows_percentages_up_to_100(mjgate, world, sim_knobs):
    world.slow(step_seconds=0.4, steps=4)
    child = spawn(mjgate, "imagine", "a fox in a terminal", "--wait", "--out", "tty.png")
    child.expect(r"task (\d+) ")
    task_id = child.match.group(1)
    child.expect(pexpect.EOF)
    child.close()
    screen = ANSI.sub("", child.before)
    assert child.exitstatus == 0, screen
    seen = [int(p) for p in PERCENT.findall(screen)]
    bar = [p for p in seen if p < 100]
    assert any(0 < p < 100 for p in bar), screen  # it moved on the way, not only a final line
    assert bar == sorted(bar), seen  # never goes backwards
    assert f"task {task_id} SUCCESS (IMAGINE, 100%)" in screen
    last_bar_line = [line for line in screen.replace("\r", "\n").splitlines() if "━" in line][-1]
    assert re.search(r"\b100%\s+SUCCESS", last_bar_line), last_bar_line
    assert (mjgate.cwd / "tty.png").read_bytes().startswith(b"\x89PNG")


def test_ctrl_c_while_waiting_exits_130_and_the_task_goes_on(mjgate, world, sim_knobs):
    world.slow(step_seconds=0.8, steps=5)
    child = spawn(mjgate, "imagine", "a fox that takes its time", "--wait")
    child.expect(r"task (\d+) ")
    task_id = child.match.group(1)
    child.expect(r"IN_PROGRESS")  # mid-wait
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    screen = ANSI.sub("", child.before)
    assert child.exitstatus == 130, screen
    assert f"interrupted: task {task_id} goes on at the gateway; resume with: mjgate wait {task_id}" in screen
    assert "Traceback" not in screen and "Aborted" not in screen
    with Client(world.base_url, world.key) as client:
        assert client.fetch(task_id).status != "SUCCESS"  # it was interrupted before the end...
        assert client.wait(task_id, timeout=60).status == "SUCCESS"  # ...and finished at the gateway anyway
    assert not (mjgate.cwd / f"{task_id}.png").exists()
