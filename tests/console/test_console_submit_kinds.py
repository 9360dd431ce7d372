"""Blend, describe, video and edits from the console against a real simulator; the task log's new
filters, user names and CSV export; the users' request counters."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from mjgate.billing.pricing import QUOTA_PER_USD
from mjgate.models import Task, User
from tests.console.helpers import data, fail, login, new_client
from tests.console.test_console_submit import PLENTY, PNG_B64, balances, wait_done
from tests.factories import insert_tasks, make_user, task_row
from tests.fixtures.relay import add_simulator_channel

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PRICE = {"BLEND": 0.1, "DESCRIBE": 0.05, "VIDEO": 0.8, "EDITS": 0.1}


def upstream_bodies(sim, route: str) -> list[dict]:
    return [r["json"] for r in sim.requests() if r["path"].endswith(route)]


@sqlite_only
async def test_blend_describe_video_and_edits(client, db, simulator_session):
    console = await login(client, db, "alice", quota=PLENTY)
    await add_simulator_channel(db, simulator_session)
    spent = 0

    blend = data(await console.post("/api/console/submit/blend",
                                    {"images": [PNG_B64, PNG_B64, PNG_B64], "dimensions": "LANDSCAPE", "mode": "relax"}))
    assert upstream_bodies(simulator_session, "/submit/blend")[-1]["dimensions"] == "LANDSCAPE"
    assert len(upstream_bodies(simulator_session, "/submit/blend")[-1]["base64Array"]) == 3
    item = await wait_done(console, blend["mj_id"])
    assert item["status"] == "SUCCESS" and item["action"] == "BLEND" and item["mode"] == "relax" and item["image_url"]
    spent += item["quota"]

    described = await wait_done(console, data(await console.post("/api/console/submit/describe",
                                                                 {"image": PNG_B64}))["mj_id"])
    assert described["action"] == "DESCRIBE" and described["status"] == "SUCCESS"
    assert described["prompt"].count("\n\n") == 3  # four prompts to imagine from
    assert upstream_bodies(simulator_session, "/submit/describe")[-1]["base64"].startswith("data:image/png;base64,")
    spent += described["quota"]
    # A URL is downloaded by the gateway, from public addresses only.
    message = fail(await console.post("/api/console/submit/describe", {"image_url": "http://127.0.0.1:9/cat.png"}), 400)
    assert "not a public address" in message
    data_url = await wait_done(console, data(await console.post("/api/console/submit/describe",
                                                                {"image_url": PNG_B64}))["mj_id"])
    spent += data_url["quota"]

    # Video from a first and a last frame; animating a finished image; extending that video.
    frames = data(await console.post("/api/console/submit/video", {
        "prompt": "waves rolling in", "image": PNG_B64, "end_image": PNG_B64, "motion": "high"}))
    sent = upstream_bodies(simulator_session, "/submit/video")[-1]
    assert sent["motion"] == "high" and sent["image"].startswith("data:image/") and sent["endImage"]
    video = await wait_done(console, frames["mj_id"])
    assert video["action"] == "VIDEO" and video["status"] == "SUCCESS" and video["video_url"]
    spent += video["quota"]
    animated = await wait_done(console, data(await console.post("/api/console/submit/video", {
        "task_id": blend["mj_id"], "index": 2, "prompt": "slow pan"}))["mj_id"])
    sent = upstream_bodies(simulator_session, "/submit/video")[-1]
    assert sent["index"] == 2 and sent["taskId"] and sent["taskId"] != blend["mj_id"]  # the upstream's own id
    assert animated["status"] == "SUCCESS"
    spent += animated["quota"]
    extended = await wait_done(console, data(await console.post("/api/console/submit/video", {
        "task_id": animated["mj_id"], "extend": True, "prompt": "and further"}))["mj_id"])
    assert upstream_bodies(simulator_session, "/submit/video")[-1]["action"] == "extend"
    assert extended["status"] == "SUCCESS"
    spent += extended["quota"]
    fail(await console.post("/api/console/submit/video", {"task_id": blend["mj_id"], "extend": True}), 400)

    edits = await wait_done(console, data(await console.post("/api/console/submit/edits", {
        "prompt": "make it night", "image": PNG_B64, "mask": PNG_B64}))["mj_id"])
    sent = upstream_bodies(simulator_session, "/submit/edits")[-1]
    assert sent["prompt"] == "make it night" and sent["maskBase64"] == PNG_B64 and sent["image"] == PNG_B64
    assert edits["status"] == "SUCCESS" and edits["action"] == "EDITS"
    spent += edits["quota"]

    # Relax costs half; the animation and its extension keep the blend's relax mode.
    usd = PRICE["BLEND"] / 2 + 2 * PRICE["DESCRIBE"] + PRICE["VIDEO"] + 2 * PRICE["VIDEO"] / 2 + PRICE["EDITS"]
    assert spent == round(usd * QUOTA_PER_USD)
    assert animated["mode"] == extended["mode"] == "relax"
    quota, ledger = await balances(db, console.user["id"])
    assert quota == ledger == PLENTY - spent
    async with db.read() as session:
        user = await session.get(User, console.user["id"])
        assert user.request_count == 7  # every submitted task counts
        dialects = set(await session.scalars(select(Task.dialect)))
    assert dialects == {"console"}


@pytest.mark.parametrize("path, body", [
    ("/api/console/submit/blend", {"images": [PNG_B64]}),
    ("/api/console/submit/blend", {"images": [PNG_B64] * 6}),
    ("/api/console/submit/blend", {"images": [PNG_B64, "%%%"]}),
    ("/api/console/submit/blend", {"images": [PNG_B64, PNG_B64], "dimensions": "ROUND"}),
    ("/api/console/submit/describe", {}),
    ("/api/console/submit/describe", {"image": PNG_B64, "image_url": "https://example.com/a.png"}),
    ("/api/console/submit/describe", {"image_url": "ftp://example.com/a.png"}),
    ("/api/console/submit/describe", {"image": "data:text/plain;base64,aGVsbG8="}),
    ("/api/console/submit/video", {}),
    ("/api/console/submit/video", {"prompt": "x", "end_image": PNG_B64}),
    ("/api/console/submit/video", {"prompt": "x", "extend": True}),
    ("/api/console/submit/video", {"task_id": "1", "image": PNG_B64}),
    ("/api/console/submit/video", {"prompt": "x", "motion": "wild"}),
    ("/api/console/submit/video", {"task_id": "1", "index": 5}),
    ("/api/console/submit/edits", {"prompt": "x"}),
    ("/api/console/submit/edits", {"image": PNG_B64}),
    ("/api/console/submit/edits", {"prompt": "x", "image": PNG_B64, "mask": "not base64!"}),
])
async def test_bad_bodies_are_400(client, db, path, body):
    console = await login(client, db, "alice", quota=PLENTY)
    fail(await console.post(path, body), 400)


@sqlite_only
async def test_new_submit_routes_need_the_csrf_token(client, db):
    console = await login(client, db, "alice", quota=PLENTY)
    resp = await client.post("/api/console/submit/blend", json={"images": [PNG_B64, PNG_B64]})
    assert resp.status_code == 403 and resp.json()["success"] is False
    fail(await console.post("/api/console/submit/video", {"task_id": "404404"}), 404)


async def test_listing_filters_names_and_csv(app, client, db):
    admin = await login(client, db, "root", role="admin")
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bob")
    rows = [
        task_row(alice["id"], submit_time=1_700_000_000_000, mj_id="t1", prompt="A Red Fox", status="SUCCESS",
                 action="IMAGINE", mode="fast", quota=50_000),
        task_row(alice["id"], submit_time=1_700_000_001_000, mj_id="t2", prompt="blue 100% whale", status="FAILURE",
                 action="UPSCALE", mode="relax", fail_reason="banned", quota=25_000, refunded_at=1_700_000_009_000),
        task_row(bob["id"], submit_time=1_700_000_002_000, mj_id="t3", prompt="=cmd|' /C calc'!A0", status="IN_PROGRESS",
                 action="IMAGINE", mode="relax", finish_time=None, progress="40%"),
    ]
    await insert_tasks(db, rows)

    async def ids(query: str) -> list[str]:
        return [i["mj_id"] for i in data(await admin.get(f"/api/mj/?{query}"))["items"]]

    assert await ids("") == ["t3", "t2", "t1"]
    assert await ids("status=FAILURE") == ["t2"]
    assert await ids("status=success,failure") == ["t2", "t1"]
    assert await ids("action=IMAGINE") == ["t3", "t1"]
    assert await ids("mode=relax") == ["t3", "t2"]
    assert await ids("prompt=red%20fox") == ["t1"]  # case-insensitive substring
    assert await ids("prompt=100%25") == ["t2"]  # % is a character, not a wildcard
    assert await ids("username=bob") == ["t3"]
    assert await ids("username=nobody") == []
    assert await ids(f"user_id={alice['id']}&mode=fast") == ["t1"]
    listing = data(await admin.get("/api/mj/"))
    assert [i["username"] for i in listing["items"]] == ["bob", "alice", "alice"]
    for bad in ("status=DONE", "action=PAINT", "mode=warp", "user_id=x", "prompt=" + "x" * 201):
        fail(await admin.get(f"/api/mj/?{bad}"), 400)

    # CSV of the filtered view: the header, the rows, formulas defused.
    resp = await admin.get("/api/console/export/tasks.csv?mode=relax")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert table[0][:3] == ["mj_id", "submitted_utc", "finished_utc"]
    assert [r[0] for r in table[1:]] == ["t3", "t2"]
    header = table[0]
    t2 = dict(zip(header, table[2]))
    assert t2["username"] == "alice" and t2["refunded"] == "yes" and t2["fail_reason"] == "banned"
    assert t2["submitted_utc"] == "2023-11-14T22:13:21Z" and t2["duration_s"] == "30"
    assert dict(zip(header, table[1]))["prompt"].startswith("'=")
    fail(await admin.get("/api/console/export/tasks.csv?status=nope"), 400)

    # A user's own listing and export: their tasks only, whatever user filter they send.
    async with new_client(app) as other:
        carol = await login(other, db, "carol")
        await insert_tasks(db, [task_row(carol.user["id"], mj_id="c1", prompt="mine")])
        own = data(await carol.get(f"/api/mj/self?username=bob&user_id={bob['id']}"))
        assert [i["mj_id"] for i in own["items"]] == ["c1"] and own["items"][0]["username"] == "carol"
        exported = (await carol.get("/api/console/export/tasks.csv")).content.decode("utf-8-sig")
        assert [r[0] for r in list(csv.reader(io.StringIO(exported)))[1:]] == ["c1"]


@sqlite_only
async def test_csv_export_pages_through_many_rows(client, db):
    admin = await login(client, db, "root", role="admin")
    rows = [task_row(admin.user["id"], submit_time=1_700_000_000_000 + (i // 3) * 1000, mj_id=f"m{i:05d}")
            for i in range(1_234)]  # ties on submit_time across chunk boundaries
    await insert_tasks(db, rows)
    text = (await admin.get("/api/console/export/tasks.csv")).content.decode("utf-8-sig")
    exported = [r[0] for r in list(csv.reader(io.StringIO(text)))[1:]]
    assert len(exported) == len(set(exported)) == 1_234
