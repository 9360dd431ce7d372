"""The AceData API on a real `mjgate serve` (uvicorn, poller, upstream pushes): sync answers come as
soon as the upstream finishes, and a client that hangs up mid-wait leaves the task running."""

from __future__ import annotations

import json
import time

import httpx


def test_sync_and_abandoned_waits_on_a_live_gateway(live_world):
    base, headers = live_world["base_url"], {"Authorization": f"Bearer {live_world['key']}"}
    started = time.monotonic()
    resp = httpx.post(f"{base}/midjourney/imagine", json={"prompt": "a live fox"}, headers=headers, timeout=60)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["success"] is True and answer["image_url"].startswith(base + "/mj/image/")
    assert answer["trace_id"] == resp.headers["x-trace-id"]
    assert time.monotonic() - started < 10
    assert httpx.get(answer["image_url"]).headers["content-type"] == "image/png"

    # A client that gives up: the gateway stops waiting for it, the task goes on.
    live_world["simulator"].configure(step_seconds=0.5)
    try:
        httpx.post(f"{base}/midjourney/imagine", json={"prompt": "abandoned"}, headers=headers, timeout=0.5)
        raise AssertionError("expected the client to time out")
    except httpx.TimeoutException:
        pass
    time.sleep(1.5)  # the gateway notices the disconnect within a second
    recent = httpx.post(f"{base}/midjourney/tasks", json={"action": "retrieve_batch", "limit": 1},
                        headers=headers).json()
    abandoned = recent["items"][0]
    assert abandoned["request"]["prompt"] == "abandoned"
    deadline = time.monotonic() + 20
    while "success" not in abandoned["response"]:
        assert time.monotonic() < deadline, abandoned
        time.sleep(0.3)
        abandoned = httpx.post(f"{base}/midjourney/tasks", json={"action": "retrieve", "id": abandoned["id"]},
                               headers=headers).json()
    assert abandoned["response"]["success"] is True

    # Streaming over a real connection.
    with httpx.stream("POST", f"{base}/midjourney/imagine", json={"prompt": "streamed"},
                      headers={**headers, "Accept": "application/x-ndjson"}, timeout=60) as stream:
        lines = [json.loads(line) for line in stream.iter_lines() if line.strip()]
    assert lines[-1]["success"] is True and lines[-1]["image_url"] and len(lines) >= 3
    assert len({json.dumps(line, sort_keys=True) for line in lines}) == len(lines)  # no repeated lines

    errors = [line for line in live_world["gateway"].log().splitlines() if "unhandled" in line or "Traceback" in line]
    assert errors == []
