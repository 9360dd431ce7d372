"""GET /api/mj/self and /api/mj/ (SPEC §3.1, seeds 000-002), on every database backend."""

from __future__ import annotations

import pytest

from tests.factories import insert_tasks, make_channel, make_user, task_row

SEED_SELF_ITEM_FIELDS = {
    "id", "mj_id", "action", "prompt", "prompt_en", "status", "progress", "image_url", "video_url",
    "video_urls", "submit_time", "start_time", "finish_time", "fail_reason", "quota",
}
SEED_ADMIN_EXTRA = {"user_id", "channel_id"}
T0 = 1_700_000_000_000  # a fixed epoch-ms base so time filters are exact


async def test_self_envelope_matches_seed(client, db):
    alice = await make_user(db, "alice")
    await insert_tasks(db, [task_row(alice["id"], submit_time=T0, mj_id="task123456", prompt="a beautiful landscape",
                                     quota=1000, video_url="https://example.com/video.mp4",
                                     video_urls=["https://example.com/video1.mp4"])])
    resp = await client.get("/api/mj/self", headers=alice["headers"])
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"success", "message", "data"}
    assert body["success"] is True and body["message"] == ""
    assert set(body["data"]) == {"items", "total", "page", "page_size"}
    assert (body["data"]["total"], body["data"]["page"], body["data"]["page_size"]) == (1, 1, 20)
    item = body["data"]["items"][0]
    assert SEED_SELF_ITEM_FIELDS <= set(item)
    assert not SEED_ADMIN_EXTRA & set(item)
    assert item["mj_id"] == "task123456"
    assert item["action"] == "IMAGINE" and item["status"] == "SUCCESS" and item["progress"] == "100%"
    assert item["video_urls"] == '["https://example.com/video1.mp4"]'  # a JSON array *string*, as in the seed
    assert item["submit_time"] == T0 // 1000  # seconds
    assert item["finish_time"] == (T0 + 30_000) // 1000
    assert item["quota"] == 1000 and item["fail_reason"] == ""
    assert item["image_url"] == ""  # no image -> empty, never a dead forwarded link
    assert isinstance(item["id"], int)


async def test_admin_items_add_user_and_channel(client, db):
    admin = await make_user(db, "boss", role="admin")
    bob = await make_user(db, "bob")
    channel_id = await make_channel(db)
    await insert_tasks(db, [task_row(bob["id"], channel_id=channel_id, submit_time=T0)])
    body = (await client.get("/api/mj/", headers=admin["headers"])).json()
    item = body["data"]["items"][0]
    assert item["user_id"] == bob["id"] and item["channel_id"] == channel_id
    assert SEED_SELF_ITEM_FIELDS | SEED_ADMIN_EXTRA <= set(item)


@pytest.mark.parametrize("path", ["/api/mj/self", "/api/mj/self/"])
async def test_trailing_slash_and_header_forms(client, db, path):
    alice = await make_user(db, "alice")
    token = alice["access_token"]
    for auth, who in [(f"Bearer {token}", str(alice["id"])), (token, f"Bearer {alice['id']}")]:
        resp = await client.get(path, headers={"Authorization": auth, "New-Api-User": who})
        assert resp.status_code == 200, resp.text
        assert resp.json()["success"] is True


@pytest.mark.parametrize("path", ["/api/mj/", "/api/mj"])
async def test_admin_route_both_spellings(client, db, path):
    admin = await make_user(db, "boss", role="root")
    assert (await client.get(path, headers=admin["headers"])).status_code == 200


async def test_image_url_points_at_gateway_when_task_has_image(client, db):
    alice = await make_user(db, "alice")
    await insert_tasks(db, [task_row(alice["id"], mj_id="withimg", image_url="http://upstream.example/x.png")])
    item = (await client.get("/api/mj/self", headers=alice["headers"])).json()["data"]["items"][0]
    assert item["image_url"].startswith("http://gateway.test/mj/image/withimg?")
    assert "sig=" in item["image_url"] and "expires=" in item["image_url"]
    assert "upstream.example" not in item["image_url"]


# ------------------------------------------------------------------ auth failures


def _fail(resp, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False and set(body) == {"success", "message"}
    assert body["message"]
    return body["message"]


async def test_missing_credentials(client, db):
    _fail(await client.get("/api/mj/self"), 401)


async def test_bad_token(client, db):
    alice = await make_user(db, "alice")
    _fail(await client.get("/api/mj/self", headers={"Authorization": "Bearer nope", "New-Api-User": str(alice["id"])}), 401)


async def test_missing_new_api_user(client, db):
    alice = await make_user(db, "alice")
    msg = _fail(await client.get("/api/mj/self", headers={"Authorization": f"Bearer {alice['access_token']}"}), 401)
    assert "New-Api-User" in msg


@pytest.mark.parametrize("value", ["999999", "abc", "Bearer x", "-1"])
async def test_mismatched_or_malformed_new_api_user(client, db, value):
    alice = await make_user(db, "alice")
    headers = {"Authorization": f"Bearer {alice['access_token']}", "New-Api-User": value}
    _fail(await client.get("/api/mj/self", headers=headers), 401)


async def test_another_users_id_in_header(client, db):
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bob")
    headers = {"Authorization": f"Bearer {alice['access_token']}", "New-Api-User": str(bob["id"])}
    _fail(await client.get("/api/mj/self", headers=headers), 401)


async def test_disabled_user(client, db, tmp_path):
    from mjgate.accounts.users import set_status

    alice = await make_user(db, "alice")
    async with db.write() as session:
        await set_status(session, "alice", "disabled")
    _fail(await client.get("/api/mj/self", headers=alice["headers"]), 403)


async def test_user_on_admin_route(client, db):
    alice = await make_user(db, "alice")
    _fail(await client.get("/api/mj/", headers=alice["headers"]), 403)


async def test_session_cookie_auth(client, db, app):
    from mjgate.auth import sessions

    alice = await make_user(db, "alice")
    cookie = sessions.issue(app.state.secret_key, alice["id"], 0, 60)
    client.cookies.set(sessions.COOKIE_NAME, cookie)
    resp = await client.get("/api/mj/self")
    assert resp.status_code == 200
    client.cookies.set(sessions.COOKIE_NAME, cookie[:-2] + "xx")
    _fail(await client.get("/api/mj/self"), 401)
    client.cookies.set(sessions.COOKIE_NAME, sessions.issue(app.state.secret_key, alice["id"], 0, -10))
    _fail(await client.get("/api/mj/self"), 401)
    # Bumping session_version (logout everywhere) revokes the cookie.
    client.cookies.set(sessions.COOKIE_NAME, sessions.issue(app.state.secret_key, alice["id"], 1, 60))
    _fail(await client.get("/api/mj/self"), 401)


# ------------------------------------------------------------------ isolation


async def test_user_never_sees_another_users_tasks(client, db):
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bob")
    await insert_tasks(db, [task_row(alice["id"], mj_id=f"a{i}") for i in range(3)]
                       + [task_row(bob["id"], mj_id=f"b{i}") for i in range(4)])
    a = (await client.get("/api/mj/self", headers=alice["headers"])).json()["data"]
    b = (await client.get("/api/mj/self", headers=bob["headers"])).json()["data"]
    assert a["total"] == 3 and {i["mj_id"] for i in a["items"]} == {"a0", "a1", "a2"}
    assert b["total"] == 4 and all(i["mj_id"].startswith("b") for i in b["items"])
    # Filtering by the other user's task id finds nothing rather than leaking it.
    hit = (await client.get("/api/mj/self?mj_id=b1", headers=alice["headers"])).json()["data"]
    assert hit == {"items": [], "total": 0, "page": 1, "page_size": 20}


async def test_self_ignores_channel_filter(client, db):
    alice = await make_user(db, "alice")
    channel_id = await make_channel(db)
    await insert_tasks(db, [task_row(alice["id"], channel_id=None), task_row(alice["id"], channel_id=channel_id)])
    data = (await client.get(f"/api/mj/self?channel_id={channel_id}", headers=alice["headers"])).json()["data"]
    assert data["total"] == 2


# ------------------------------------------------------------------ filters


@pytest.fixture
async def timeline(db):
    """Two users, two channels, tasks one minute apart."""
    admin = await make_user(db, "boss", role="admin")
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bob")
    ch1 = await make_channel(db, "one")
    ch2 = await make_channel(db, "two")
    rows = []
    for i in range(10):
        owner = alice if i % 2 == 0 else bob
        rows.append(task_row(owner["id"], channel_id=ch1 if i < 5 else ch2, submit_time=T0 + i * 60_000, mj_id=f"t{i}"))
    await insert_tasks(db, rows)
    return {"admin": admin, "alice": alice, "bob": bob, "ch1": ch1, "ch2": ch2}


def _ids(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [i["mj_id"] for i in resp.json()["data"]["items"]]


async def test_newest_first(client, timeline):
    ids = _ids(await client.get("/api/mj/", headers=timeline["admin"]["headers"]))
    assert ids == [f"t{i}" for i in range(9, -1, -1)]


async def test_filter_mj_id(client, timeline):
    assert _ids(await client.get("/api/mj/?mj_id=t3", headers=timeline["admin"]["headers"])) == ["t3"]
    assert _ids(await client.get("/api/mj/self?mj_id=t4", headers=timeline["alice"]["headers"])) == ["t4"]
    assert _ids(await client.get("/api/mj/?mj_id=nope", headers=timeline["admin"]["headers"])) == []


async def test_filter_channel(client, timeline):
    h = timeline["admin"]["headers"]
    assert _ids(await client.get(f"/api/mj/?channel_id={timeline['ch2']}", headers=h)) == ["t9", "t8", "t7", "t6", "t5"]


async def test_filter_time_seconds(client, timeline):
    h = timeline["admin"]["headers"]
    start = (T0 + 2 * 60_000) // 1000
    end = (T0 + 4 * 60_000) // 1000
    assert _ids(await client.get(f"/api/mj/?start_timestamp={start}&end_timestamp={end}", headers=h)) == ["t4", "t3", "t2"]
    assert _ids(await client.get(f"/api/mj/?start_timestamp={(T0 + 8 * 60_000) // 1000}", headers=h)) == ["t9", "t8"]
    assert _ids(await client.get(f"/api/mj/?end_timestamp={T0 // 1000}", headers=h)) == ["t0"]


async def test_filter_time_milliseconds(client, timeline):
    h = timeline["admin"]["headers"]
    url = f"/api/mj/?start_timestamp={T0 + 2 * 60_000}&end_timestamp={T0 + 3 * 60_000}"
    assert _ids(await client.get(url, headers=h)) == ["t3", "t2"]


async def test_filters_combined(client, timeline):
    h = timeline["admin"]["headers"]
    url = f"/api/mj/?channel_id={timeline['ch1']}&start_timestamp={(T0 + 60_000) // 1000}&end_timestamp={(T0 + 8 * 60_000) // 1000}"
    assert _ids(await client.get(url, headers=h)) == ["t4", "t3", "t2", "t1"]
    assert _ids(await client.get(url + "&mj_id=t2", headers=h)) == ["t2"]
    assert _ids(await client.get(url + "&mj_id=t7", headers=h)) == []
    # The user's own listing with a time range shows only their tasks in it.
    ah = timeline["alice"]["headers"]
    assert _ids(await client.get(f"/api/mj/self?start_timestamp={(T0 + 60_000) // 1000}", headers=ah)) == ["t8", "t6", "t4", "t2"]


async def test_empty_values_mean_no_filter(client, timeline):
    h = timeline["admin"]["headers"]
    ids = _ids(await client.get("/api/mj/?mj_id=&channel_id=&start_timestamp=&end_timestamp=&p=&page_size=", headers=h))
    assert len(ids) == 10


# ------------------------------------------------------------------ paging


async def test_paging(client, timeline):
    h = timeline["admin"]["headers"]
    resp = await client.get("/api/mj/?p=2&page_size=3", headers=h)
    data = resp.json()["data"]
    assert (data["total"], data["page"], data["page_size"]) == (10, 2, 3)
    assert [i["mj_id"] for i in data["items"]] == ["t6", "t5", "t4"]
    last = (await client.get("/api/mj/?p=4&page_size=3", headers=h)).json()["data"]
    assert [i["mj_id"] for i in last["items"]] == ["t0"]
    beyond = (await client.get("/api/mj/?p=50&page_size=3", headers=h)).json()["data"]
    assert beyond["items"] == [] and beyond["total"] == 10


@pytest.mark.parametrize("p,expected_page", [("0", 1), ("-5", 1), ("1", 1)])
async def test_page_clamped_to_one(client, timeline, p, expected_page):
    data = (await client.get(f"/api/mj/?p={p}", headers=timeline["admin"]["headers"])).json()["data"]
    assert data["page"] == expected_page and len(data["items"]) == 10


@pytest.mark.parametrize("size,expected", [("0", 20), ("-1", 20), ("1000", 100), ("5", 5)])
async def test_page_size_clamped(client, timeline, size, expected):
    data = (await client.get(f"/api/mj/?page_size={size}", headers=timeline["admin"]["headers"])).json()["data"]
    assert data["page_size"] == expected


@pytest.mark.parametrize(
    "query",
    ["p=abc", "p=1.5", "page_size=x", "p=99999999999999999999999", "start_timestamp=yesterday",
     "end_timestamp=-5", "channel_id=one", "start_timestamp=200&end_timestamp=100", "p=%00", "mj_id=" + "x" * 100],
)
async def test_bad_parameters_are_400(client, timeline, query):
    _fail(await client.get(f"/api/mj/?{query}", headers=timeline["admin"]["headers"]), 400)
