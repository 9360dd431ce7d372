"""The gateway as a deployed process: submit over real HTTP and watch a task finish."""

import time

import httpx


def test_live_gateway_imagine_roundtrip(live_world):
    base, key = live_world["base_url"], live_world["key"]
    headers = {"Authorization": f"Bearer {key}"}
    answer = httpx.post(f"{base}/mj/submit/imagine", json={"prompt": "a live fox"}, headers=headers).json()
    assert answer["code"] == 1, answer
    deadline = time.monotonic() + 20
    while True:
        task = httpx.get(f"{base}/mj/task/{answer['result']}/fetch", headers=headers).json()
        if task["status"] in ("SUCCESS", "FAILURE") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert task["status"] == "SUCCESS", task
    image = httpx.get(task["imageUrl"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
