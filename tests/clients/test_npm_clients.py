"""Real third-party midjourney-proxy clients from npm, unchanged, against a live gateway.

The clients are pinned in tests/clients/node/package.json (+ package-lock.json) and installed by
`scripts/install.sh test` (npm ci). Each Node driver there runs one client end to end:
imagine -> wait for SUCCESS -> U1 -> wait for SUCCESS -> download the image, and prints a JSON
summary. Here we check that summary, what the gateway recorded, and what the upstream (the
simulator) was asked to do.

- `uniai` (devilyouwei's "UniAI" SDK): header `mj-api-secret` only; /mj/submit/imagine,
  /mj/task/{id}/fetch, /mj/submit/change {action: UPSCALE, index: 1}; downloads every imageUrl.
- `@302ai/ai-sdk` (302.AI's Vercel AI SDK provider): `Authorization: Bearer` and `mj-api-secret`;
  /mj/submit/imagine, /mj/task/{id}/fetch every 2 s, /mj/submit/action with the "U1" button's
  customId, then downloads imageUrl without auth.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"
PACKAGES = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PROMPT = "a red fox in snow"
DRIVER_TIMEOUT_S = 120


def _node() -> str:
    """The node binary, with the pinned clients installed; skip (or fail on CI) otherwise."""
    problem = None
    node = shutil.which("node")
    if node is None:
        problem = "node is not installed (Node >= 18 is needed to run the npm midjourney-proxy clients)"
    else:
        version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        major = re.match(r"v(\d+)", version)
        if not major or int(major.group(1)) < 18:
            problem = f"node {version or '?'} is too old: the npm clients need Node >= 18 (global fetch)"
        else:
            missing = [name for name in PACKAGES if not (NODE_DIR / "node_modules" / name / "package.json").exists()]
            if missing:
                problem = (f"npm packages {', '.join(missing)} are not installed in {NODE_DIR}: "
                           "run `scripts/install.sh test` (or `npm ci` there)")
    if problem is None:
        return node
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture
def node() -> str:
    # Requested before live_world, so a machine without the clients skips before starting anything.
    return _node()


def run_driver(node: str, script: str, live_world: dict, workdir: Path) -> dict:
    """`node tests/clients/node/<script> <base_url> <key>` in `workdir`; its JSON summary."""
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [node, str(NODE_DIR / script), live_world["base_url"], live_world["key"], PROMPT],
        cwd=workdir, capture_output=True, text=True, timeout=DRIVER_TIMEOUT_S,
        env={**os.environ, "NO_COLOR": "1"},
    )
    lines = proc.stdout.strip().splitlines()
    try:
        summary = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        pytest.fail(f"{script} printed no JSON summary (exit {proc.returncode})\n"
                    f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\ngateway log:\n{live_world['gateway'].log()}")
    assert proc.returncode == 0 and summary["ok"], (
        f"{script} failed (exit {proc.returncode}): {json.dumps(summary, indent=1)[:6000]}\n"
        f"stderr:\n{proc.stderr}\ngateway log:\n{live_world['gateway'].log()[-4000:]}"
    )
    return summary


def pick(body: dict, *keys: str) -> dict:
    """The fields a test is about; the gateway may add its own (notifyHook, ...) to upstream bodies."""
    return {k: body[k] for k in keys if k in body}


def gateway_tasks(live_world: dict) -> dict[str, dict]:
    """Every task of the client's user, as the gateway's own /mj/task/list shows it."""
    resp = httpx.get(f"{live_world['base_url']}/mj/task/list",
                     headers={"Authorization": f"Bearer {live_world['key']}"}, timeout=10)
    resp.raise_for_status()
    return {t["id"]: t for t in resp.json()}


def upstream_view(live_world: dict) -> tuple[list[dict], dict[str, dict]]:
    """The submits in the simulator's request log, and the simulator's tasks by action.

    The log is read first: listing the tasks is itself a request the simulator logs.
    """
    sim = live_world["simulator"]
    log = sim.requests()
    for entry in log:
        # The gateway talks to its channel with the channel's secret, never the client's key.
        assert live_world["key"] not in json.dumps(entry["headers"]), entry
        if not entry["path"].startswith("/mj/image/"):
            assert entry["headers"].get("mj-api-secret") == sim.secret, entry
    # Every write the upstream saw; POST /mj/task/list-by-condition is the poller reading.
    submits = [e for e in log if e["method"] == "POST" and "/task/" not in e["path"]]
    tasks = httpx.get(sim.url("/mj/task/list"), headers=sim.headers, timeout=10).json()
    by_action: dict[str, dict] = {}
    for task in tasks:
        assert task["action"] not in by_action, f"upstream has more than one {task['action']} task: {tasks}"
        by_action[task["action"]] = task
    assert set(by_action) == {"IMAGINE", "UPSCALE"}, tasks
    assert all(t["status"] == "SUCCESS" for t in tasks), tasks
    assert by_action["UPSCALE"]["properties"].get("parentId") == by_action["IMAGINE"]["id"], tasks
    return submits, by_action


def assert_gateway_recorded(live_world: dict, imagine_id: str, upscale_id: str) -> dict[str, dict]:
    tasks = gateway_tasks(live_world)
    assert set(tasks) == {imagine_id, upscale_id}, tasks
    assert tasks[imagine_id]["action"] == "IMAGINE" and tasks[imagine_id]["status"] == "SUCCESS", tasks[imagine_id]
    assert tasks[upscale_id]["action"] == "UPSCALE" and tasks[upscale_id]["status"] == "SUCCESS", tasks[upscale_id]
    assert tasks[upscale_id]["progress"] == "100%" and tasks[upscale_id]["imageUrl"], tasks[upscale_id]
    return tasks


def test_uniai_imagine_upscale_download(node, live_world, tmp_path):
    summary = run_driver(node, "uniai_flow.mjs", live_world, tmp_path / "uniai")
    assert summary["client"] == "uniai" and summary["version"] == PACKAGES["uniai"]

    imagine, upscale = summary["imagine"], summary["upscale"]
    imagine_id, upscale_id = imagine["taskId"], upscale["taskId"]
    assert imagine_id and upscale_id and imagine_id != upscale_id
    # uniai's view of a task: {id, type, imgs, info, fail, progress}; it never reads `status`.
    assert imagine["task"]["id"] == imagine_id and imagine["task"]["type"] == "IMAGINE"
    assert upscale["task"]["id"] == upscale_id and upscale["task"]["type"] == "UPSCALE"
    for task in (imagine["task"], upscale["task"]):
        assert task["progress"] == 100 and task["fail"] == "" and len(task["imgs"]) == 1, task

    # The upscaled picture uniai downloaded (to ./cache/<taskId>.png) from the gateway's imageUrl.
    image = Path(summary["image"]["path"])
    assert image.is_relative_to(tmp_path) and image.name == f"{upscale_id}.png"
    data = image.read_bytes()
    assert len(data) == summary["image"]["bytes"] > 0 and data.startswith(PNG_SIGNATURE)
    assert (tmp_path / "uniai" / "cache" / f"{imagine_id}.png").read_bytes().startswith(PNG_SIGNATURE)

    assert_gateway_recorded(live_world, imagine_id, upscale_id)

    submits, upstream = upstream_view(live_world)
    assert [e["path"] for e in submits] == ["/mj/submit/imagine", "/mj/submit/change"], submits
    # uniai sends "<prompt> --ar 1:1 " (trailing space); the gateway passes the prompt on trimmed.
    assert submits[0]["json"]["prompt"] == f"{PROMPT} --ar 1:1", submits[0]
    assert submits[0]["json"].get("botType", "MID_JOURNEY") == "MID_JOURNEY", submits[0]
    assert pick(submits[1]["json"], "taskId", "action", "index") == {
        "taskId": upstream["IMAGINE"]["id"], "action": "UPSCALE", "index": 1}, submits[1]


def test_302ai_sdk_imagine_upscale_download(node, live_world, tmp_path):
    summary = run_driver(node, "ai302_flow.mjs", live_world, tmp_path / "ai302")
    assert summary["client"] == "@302ai/ai-sdk" and summary["version"] == PACKAGES["@302ai/ai-sdk"]
    assert summary["warnings"] == []

    # The SDK downloaded the upscaled imageUrl itself and returned it base64-encoded.
    assert len(summary["images"]) == 1 and summary["images"][0]["bytes"] > 0 and summary["images"][0]["png"]

    calls = summary["calls"]  # what the SDK sent to the gateway, in order, with the answers
    assert all(c["status"] == 200 for c in calls), calls
    assert all(c["headers"] == {"authorization": True, "mj-api-secret": True} for c in calls), calls
    posts = [c for c in calls if c["method"] == "POST"]
    assert [c["path"] for c in posts] == ["/mj/submit/imagine", "/mj/submit/action"], posts
    imagine, action = posts
    assert imagine["body"] == {"prompt": f"{PROMPT} --ar 1:1 --v 7.0", "botType": "MID_JOURNEY",
                               "upscaleIndexes": [1]}
    assert imagine["json"]["code"] == 1, imagine
    imagine_id = imagine["json"]["result"]

    def fetches(task_id):
        found = [c for c in calls if c["method"] == "GET" and c["path"] == f"/mj/task/{task_id}/fetch"]
        assert found, calls
        assert all(c["json"]["status"] != "SUCCESS" for c in found[:-1]), found
        assert found[-1]["json"]["status"] == "SUCCESS", found[-1]  # the SDK polls until SUCCESS
        return found[-1]["json"]

    grid = fetches(imagine_id)
    u1 = [b for b in grid["buttons"] if b["label"] == "U1"]
    assert len(u1) == 1, grid["buttons"]
    assert action["body"] == {"customId": u1[0]["customId"], "taskId": imagine_id}, action
    assert action["json"]["code"] == 1, action
    upscale_id = action["json"]["result"]
    final = fetches(upscale_id)
    assert final["action"] == "UPSCALE" and final["imageUrl"], final
    assert calls[-1]["path"] == f"/mj/task/{upscale_id}/fetch"

    # The image the SDK got is the one the gateway serves for that task.
    served = httpx.get(final["imageUrl"], timeout=10)
    assert served.status_code == 200 and served.content.startswith(PNG_SIGNATURE)
    assert len(served.content) == summary["images"][0]["bytes"]

    assert_gateway_recorded(live_world, imagine_id, upscale_id)

    submits, upstream = upstream_view(live_world)
    assert [e["path"] for e in submits] == ["/mj/submit/imagine", "/mj/submit/action"], submits
    assert submits[0]["json"]["prompt"] == f"{PROMPT} --ar 1:1 --v 7.0", submits[0]
    assert submits[0]["json"].get("botType") == "MID_JOURNEY", submits[0]
    assert "upscaleIndexes" not in submits[0]["json"], submits[0]  # the SDK's own option stays at the gateway
    assert pick(submits[1]["json"], "taskId", "customId") == {
        "taskId": upstream["IMAGINE"]["id"], "customId": u1[0]["customId"]}, submits[1]
    assert upstream["UPSCALE"].get("customId") == u1[0]["customId"], upstream["UPSCALE"]
