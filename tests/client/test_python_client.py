"""mjgate.client's Client and AsyncClient against the live gateway, and against the simulator itself
(a midjourney-proxy server: only `mj-api-secret`, no SSE stream, so the client polls)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from PIL import Image

from mjgate.client import (
    ActionNotAvailable, AsyncClient, AuthError, Client, MjgateError, NotFoundError, QuotaError, RefusedError,
    SubmitAnswer, Task, TaskFailedError, TaskTimeoutError,
)

GRID = ["U1", "U2", "U3", "U4", "reroll", "V1", "V2", "V3", "V4"]


class RequestLog:
    """Records what really went over the wire (an httpx event hook; the requests are real)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []

    def request(self, request: httpx.Request) -> None:
        self.requests.append(request)

    def response(self, response: httpx.Response) -> None:
        self.responses.append(response)

    def hooks(self) -> dict:
        return {"request": [self.request], "response": [self.response]}

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


async def _async_request(log: RequestLog, request: httpx.Request) -> None:
    log.request(request)


async def _async_response(log: RequestLog, response: httpx.Response) -> None:
    log.response(response)


def test_sync_client_imagine_follows_the_sse_stream(world, sim_knobs, tmp_path):
    world.slow(step_seconds=0.3, steps=4)
    log = RequestLog()
    seen: list[str] = []
    # Polling every 60 s could not see the steps of a two-second task: what arrives comes from the stream.
    with Client(world.base_url, world.key, poll_interval=60, http=httpx.Client(event_hooks=log.hooks())) as mj:
        task = mj.imagine("a streamed fox", on_progress=lambda t: seen.append(t.progress))
    assert isinstance(task, Task) and task.succeeded and task.percent == 100
    assert task.actions == GRID and task.is_grid and task.image_url.startswith(world.base_url)
    assert seen[-1] == "100%" and len([p for p in seen if p not in ("", "0%", "100%")]) >= 3, seen
    events = [r for r in log.responses if r.request.url.path == "/mj/task/events"]
    assert events and events[0].status_code == 200
    assert events[0].headers["content-type"].startswith("text/event-stream")
    assert log.paths()[0] == "/mj/submit/imagine"


def test_sync_client_follow_ups_downloads_and_reads(world, tmp_path):
    with Client(world.base_url, world.key) as mj:
        grid = mj.imagine("a fox to work on")
        files = mj.download(grid, tmp_path / "grid.png", split=True)
        assert [f.name for f in files] == ["grid-1.png", "grid-2.png", "grid-3.png", "grid-4.png"]
        with Image.open(files[0]) as quarter:
            assert quarter.size[0] > 0
        assert not (tmp_path / "grid.png").exists()  # split writes the four pictures only

        upscale = mj.action(grid, "u3")  # any spelling of U3
        assert upscale.action == "UPSCALE" and upscale.succeeded
        [single] = mj.download(upscale, tmp_path / "big.png")
        with Image.open(single) as picture:
            assert picture.format == "PNG"
        with pytest.raises(MjgateError, match="single picture, not a 2x2 grid"):
            mj.download(upscale, tmp_path / "no.png", split=True)

        zoom = mj.action(upscale.id, "zoom_out_1_5x")  # by id, AceData's spelling
        assert zoom.action == "ZOOM" and zoom.succeeded
        pan = mj.action(upscale, "pan-up", wait=False)  # wait=False: the task as submitted
        assert pan.action == "PAN" and pan.status
        assert mj.wait(pan).succeeded
        reroll = mj.action(grid, "reroll")
        assert reroll.action == "REROLL" and reroll.succeeded

        described = mj.describe(single.read_bytes())
        assert described.action == "DESCRIBE" and len(described.descriptions) == 4
        blended = mj.blend([files[0], files[1]], dimensions="portrait")
        assert blended.action == "BLEND" and blended.succeeded

        assert mj.fetch(grid.id).id == grid.id
        many = mj.fetch_many([grid.id, "4242424242424242", upscale.id])
        assert [t.id for t in many] == [grid.id, upscale.id]
        recent = mj.list_tasks(limit=3)
        assert len(recent) == 3 and recent[0].submit_time >= recent[-1].submit_time

        answer = mj.submit_imagine("a low-level submit", mode="turbo")
        assert isinstance(answer, SubmitAnswer) and answer.code == 1 and answer.accepted
        assert mj.wait(answer.task_id).mode == "TURBO"


def test_sync_client_typed_errors(world, sim_knobs):
    with Client(world.base_url, "sk-wrong") as mj, pytest.raises(AuthError, match="invalid API key") as bad:
        mj.imagine("x")
    assert bad.value.status == 401
    with Client(world.base_url, world.broke_key) as mj, pytest.raises(QuotaError, match="insufficient quota"):
        mj.imagine("x")
    with Client(world.base_url, world.key) as mj:
        with pytest.raises(NotFoundError) as missing:
            mj.fetch("4242424242424242")
        assert missing.value.status == 404
        with pytest.raises(RefusedError, match="sensitive words") as refused:
            mj.imagine("an nsfw-banned thing")
        assert refused.value.code == 24
        grid = mj.imagine("a grid")
        with pytest.raises(ActionNotAvailable, match="has no 'zoom-out-2x' button"):
            mj.action(grid, "zoom-out-2x")
        with pytest.raises(MjgateError, match="custom-zoom needs a prompt"):
            mj.action(grid, "custom-zoom")

        world.slow(step_seconds=1.0, steps=5)
        slow = mj.submit_imagine("too slow to wait for")
        with pytest.raises(TaskTimeoutError) as late:
            mj.wait(slow.task_id, timeout=0.5)
        assert isinstance(late.value, TimeoutError) and late.value.task_id == slow.task_id
        assert mj.wait(slow.task_id).succeeded  # the task went on regardless

        sim_knobs.configure(failure_rate=1.0, step_seconds=0.05)
        with pytest.raises(TaskFailedError) as failed:
            mj.imagine("doomed")
        assert failed.value.task.status == "FAILURE" and failed.value.task.fail_reason
        kept = mj.wait(failed.value.task.id, raise_on_failure=False)
        assert kept.status == "FAILURE"


def test_only_mj_api_secret_against_the_gateway(world):
    log = RequestLog()
    with Client(world.base_url, world.key, auth="mj-api-secret", http=httpx.Client(event_hooks=log.hooks())) as mj:
        task = mj.imagine("a fox behind a secret header")
        assert task.succeeded
        assert mj.action(task, "V1").action == "VARIATION"
    assert log.requests and all("authorization" not in r.headers for r in log.requests)
    assert all(r.headers["mj-api-secret"] == world.key for r in log.requests if r.url.host == "127.0.0.1")
    assert "/mj/task/events" in log.paths()  # the stream takes the header key too


def test_against_midjourney_proxy_itself(world, tmp_path):
    """The simulator is a midjourney-proxy server: mj-api-secret auth, no SSE stream, its own image URLs."""
    sim = world.simulator
    log = RequestLog()
    with Client(sim.base_url, sim.secret, auth="mj-api-secret", poll_interval=0.1,
                http=httpx.Client(event_hooks=log.hooks())) as mj:
        grid = mj.imagine("a fox straight upstream")
        assert grid.succeeded and grid.actions == GRID
        upscale = mj.action(grid, "U4")
        assert upscale.succeeded and "vary-strong" in upscale.actions
        [saved] = mj.download(upscale, tmp_path / "up.png")
        assert saved.read_bytes().startswith(b"\x89PNG")
        with pytest.raises(AuthError):
            with Client(sim.base_url, "wrong-secret", auth="mj-api-secret") as wrong:
                wrong.fetch(grid.id)
    events = [r for r in log.responses if r.request.url.path == "/mj/task/events"]
    assert events and events[0].status_code == 404  # no stream there...
    assert log.paths().count("/mj/task/events") == 1  # ...learnt once, then polling only


def test_async_client(world, tmp_path):
    async def scenario():
        log = RequestLog()
        hooks = {"request": [lambda r: _async_request(log, r)], "response": [lambda r: _async_response(log, r)]}
        seen: list[str] = []
        async with AsyncClient(world.base_url, world.key, http=httpx.AsyncClient(event_hooks=hooks)) as mj:
            grid = await mj.imagine("an async fox", on_progress=lambda t: seen.append(t.status))
            assert grid.succeeded and grid.actions == GRID and seen[-1] == "SUCCESS"
            up, var = await asyncio.gather(mj.action(grid, "U1"), mj.action(grid, "V2"))
            assert (up.action, var.action) == ("UPSCALE", "VARIATION") and up.succeeded and var.succeeded
            files = await mj.download(var, tmp_path / "var.png", split=True)
            assert len(files) == 4 and all(f.read_bytes().startswith(b"\x89PNG") for f in files)
            described = await mj.describe(files[0])
            assert len(described.descriptions) == 4
            blended = await mj.blend(files[:3])
            assert blended.succeeded
            assert [t.id for t in await mj.fetch_many([grid.id, up.id])] == [grid.id, up.id]
            assert len(await mj.list_tasks(limit=2)) == 2
            with pytest.raises(NotFoundError):
                await mj.fetch("4242424242424242")
        assert "/mj/task/events" in log.paths()

        async with AsyncClient(world.base_url, world.key, auth="mj-api-secret") as secret_only:
            assert (await secret_only.imagine("async, secret header only")).succeeded
        async with AsyncClient(world.base_url, world.broke_key) as broke:
            with pytest.raises(QuotaError):
                await broke.imagine("no money")

    asyncio.run(scenario())


def test_sync_and_async_clients_offer_the_same_methods():
    public = {name for name in dir(Client) if not name.startswith("_")} - {"close"}
    async_public = {name for name in dir(AsyncClient) if not name.startswith("_")} - {"aclose"}
    assert public == async_public
    for name in public:
        if callable(getattr(Client, name)):
            assert asyncio.iscoroutinefunction(getattr(AsyncClient, name)), name


def test_the_key_never_goes_to_another_host(world, tmp_path):
    sim = world.simulator
    with Client(sim.base_url, sim.secret, auth="mj-api-secret") as upstream:
        elsewhere = upstream.imagine("a fox hosted elsewhere")  # its imageUrl is on the simulator's host
    assert not elsewhere.image_url.startswith(world.base_url)
    for auth in ("bearer", "mj-api-secret"):
        with Client(world.base_url, world.key, auth=auth) as mj:
            [saved] = mj.download(elsewhere, tmp_path / f"elsewhere-{auth}.png")
        assert saved.read_bytes().startswith(b"\x89PNG")
        fetched = [r for r in sim.requests() if r["path"] == f"/mj/image/{elsewhere.id}.png"]
        assert fetched, "the simulator logs image requests"
        headers = fetched[-1]["headers"]
        assert "authorization" not in headers and "mj-api-secret" not in headers
        assert world.key not in json.dumps(headers)


def test_client_without_arguments_uses_the_stored_login_for_its_own_gateway_only(world, tmp_path, monkeypatch):
    from mjgate.client import save_config

    monkeypatch.delenv("MJGATE_URL", raising=False)
    monkeypatch.delenv("MJGATE_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    save_config(world.base_url, world.key, "mj-api-secret")
    with Client() as mj:
        assert mj.base_url == world.base_url and mj.auth == "mj-api-secret"
        assert isinstance(mj.list_tasks(limit=1), list)  # a wrong key would raise AuthError
    with Client(world.base_url + "/mj/") as same:  # the same gateway, spelt differently
        assert same.key == world.key
    with Client("http://127.0.0.1:1") as other:
        assert other.key == "" and "authorization" not in {k.lower() for k in other.headers}
