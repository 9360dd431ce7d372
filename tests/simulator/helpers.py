"""Talking to a simulator process over HTTP, as a midjourney-proxy client does; shared by its tests."""

from __future__ import annotations

import base64
import contextlib
import io
import struct
import time
from collections.abc import AsyncIterator

import httpx
from aiohttp import web
from PIL import Image

from tests.fixtures.simulator import SimulatorProcess

TERMINAL = {"SUCCESS", "FAILURE", "CANCEL"}


def png_base64(colour=(200, 30, 30), size=(32, 32)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def submit(sim: SimulatorProcess, route: str, body=None, *, content: bytes | None = None, prefix: str = "") -> dict:
    resp = sim.http.post(
        f"{prefix}/mj/{route}", json=body if content is None else None, content=content, headers=sim.headers
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def fetch(sim: SimulatorProcess, task_id: str) -> httpx.Response:
    return sim.http.get(f"/mj/task/{task_id}/fetch", headers=sim.headers)


def wait_done(sim: SimulatorProcess, task_id: str, timeout_s: float = 5.0) -> tuple[dict, list[tuple[str, str]]]:
    """Poll until the task ends; returns it and every (status, progress) seen on the way."""
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        task = fetch(sim, task_id).json()
        if not seen or seen[-1] != (task["status"], task["progress"]):
            seen.append((task["status"], task["progress"]))
        if task["status"] in TERMINAL:
            return task, seen
        time.sleep(0.01)
    raise AssertionError(f"task {task_id} did not finish; seen {seen}")


def wait_status(sim: SimulatorProcess, task_id: str, status: str, progress: str | None = None,
                timeout_s: float = 5.0) -> dict:
    """Poll until the task is in `status` (and at `progress`, if given)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        task = fetch(sim, task_id).json()
        if task["status"] == status and progress in (None, task["progress"]):
            return task
        time.sleep(0.01)
    raise AssertionError(f"task {task_id} never reached {status} {progress or ''}; last {task['status']}")


def imagine(sim: SimulatorProcess, prompt: str = "a red fox in the snow", **extra) -> dict:
    answer = submit(sim, "submit/imagine", {"prompt": prompt, **extra})
    assert answer["code"] == 1, answer
    return wait_done(sim, answer["result"])[0]


def press(sim: SimulatorProcess, task: dict, prefix: str) -> dict:
    """Submit the task's button whose customId starts with `prefix`."""
    custom_id = next(b["customId"] for b in task["buttons"] if b["customId"].startswith(prefix))
    return submit(sim, "submit/action", {"taskId": task["id"], "customId": custom_id})


def finish(sim: SimulatorProcess, task_id: str) -> str:
    """End one queued or running task now (control route); returns its final status."""
    resp = sim.http.post(f"/__sim/finish/{task_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["status"]


def cancel(sim: SimulatorProcess, task_id: str, prefix: str = "") -> httpx.Response:
    return sim.http.post(f"{prefix}/mj/task/{task_id}/cancel", headers=sim.headers)


def get_image(sim: SimulatorProcess, url: str) -> Image.Image:
    resp = httpx.get(url)  # no secret: result files are public like a CDN
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/png"
    assert int(resp.headers["content-length"]) == len(resp.content)
    img = Image.open(io.BytesIO(resp.content))
    img.load()
    return img


@contextlib.asynccontextmanager
async def hook_receiver() -> AsyncIterator[tuple[str, list[dict]]]:
    """A real HTTP endpoint for notifyHook posts: yields its URL and the list it appends bodies to."""
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received
    finally:
        await runner.cleanup()


# ---- MP4 reading, enough to check what the simulator serves ----------------------------------


def mp4_boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, bytes]]:
    """The (type, payload) of each ISO-BMFF box between start and end."""
    end = len(data) if end is None else end
    boxes, at = [], start
    while at < end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        assert size >= 8 and at + size <= end, f"box {kind!r} at {at} overruns its parent"
        boxes.append((kind, data[at + 8 : at + size]))
        at += size
    return boxes


def _child(payload: bytes, kind: bytes, skip: int = 0) -> bytes:
    found = [p for k, p in mp4_boxes(payload, skip) if k == kind]
    assert found, f"no {kind!r} box"
    return found[0]


def mp4_summary(data: bytes) -> dict:
    """Frame size, H.264 profile, duration and the samples of the (single) video track."""
    top = dict(mp4_boxes(data))
    assert set(top) >= {b"ftyp", b"moov", b"mdat"}, list(top)
    trak = _child(top[b"moov"], b"trak")
    mdia = _child(trak, b"mdia")
    timescale, duration = struct.unpack(">II", _child(mdia, b"mdhd")[12:20])
    assert _child(mdia, b"hdlr")[8:12] == b"vide"
    stbl = _child(_child(mdia, b"minf"), b"stbl")
    avc1 = _child(_child(stbl, b"stsd"), b"avc1", skip=8)  # after version, flags and the entry count
    width, height = struct.unpack(">HH", avc1[24:28])
    avcc = _child(avc1, b"avcC", skip=78)  # after the visual sample entry's fixed fields
    stsz = _child(stbl, b"stsz")
    count = struct.unpack(">I", stsz[8:12])[0]
    sizes = struct.unpack(f">{count}I", stsz[12 : 12 + 4 * count])
    (offset,) = struct.unpack(">I", _child(stbl, b"stco")[8:12])
    samples, at = [], offset
    for size in sizes:
        samples.append(data[at : at + size])
        at += size
    assert at - offset == len(top[b"mdat"]), "samples must fill mdat exactly"
    for sample in samples:
        (nal_len,) = struct.unpack(">I", sample[:4])
        assert nal_len == len(sample) - 4 and sample[4] & 0x1F == 5, "each sample is one IDR NAL unit"
    return {"width": width, "height": height, "profile": avcc[1], "seconds": duration / timescale,
            "samples": samples}
