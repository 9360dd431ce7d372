"""The bad inputs of issue #10, each replayed on every database: a clear refusal in the dialect's own
envelope, never a 500 (PostgreSQL refuses NUL in text, every database refuses a lone surrogate,
deep JSON overflows the parser, huge numbers overflow BIGINT)."""

from __future__ import annotations

import json

import pytest

from tests.console.helpers import login
from tests.fixtures.relay import make_relay
from tests.factories import make_user

NUL = "a\u0000b"
SURROGATE = "a\ud800b"  # json.dumps writes it as the escape \ud800, as an attacker would
DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"prompt": ' + '{"a": ' * 1000 + "1" + "}" * 1000 + "}"


def _raw(body) -> bytes:
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def _relay_bodies():
    """(path, body) for the relay faces, each with one bad string or shape."""
    for bad in (NUL, SURROGATE):
        yield "/mj/submit/imagine", {"prompt": bad}
        yield "/mj/submit/imagine", {"prompt": "a fox", "state": bad}
        yield "/mj/submit/imagine", {"prompt": "a fox", "notifyHook": f"http://example.com/{bad}"}
        yield "/mj/submit/action", {"taskId": bad, "customId": "MJ::JOB::upsample::1::x"}
        yield "/mj/task/list-by-condition", {"ids": [bad]}
        yield "/mj/task/list-by-condition", {"ids": ["1"], bad: 1}
        yield "/midjourney/imagine", {"prompt": bad}
        yield "/midjourney/imagine", {"prompt": "a fox", "callback_url": f"http://example.com/{bad}"}
        yield "/midjourney/tasks", {"action": "retrieve", "id": bad}
        yield "/midjourney/tasks", {"action": "retrieve_batch", "ids": [bad]}
    for deep in (DEEP, DEEP_OBJECT):
        yield "/mj/submit/imagine", deep
        yield "/mj/task/list-by-condition", deep
        yield "/midjourney/imagine", deep
        yield "/midjourney/tasks", deep
    yield "/mj/submit/imagine", {"prompt": "a fox", "index": 10**30}
    yield "/mj/submit/imagine", '{"prompt": "a fox", "x": NaN}'
    yield "/midjourney/imagine", {"prompt": "a fox", "timeout": 1e300}


def _assert_refused(path: str, resp) -> None:
    assert resp.status_code < 500, (path, resp.status_code, resp.text[:300])
    body = resp.json()
    if path.startswith(("/mj/", "/mj-")):
        assert set(body) >= {"code", "description", "result"}, body
        # Submits answer HTTP 200 and refuse with code 4 (validation); reads answer a 4xx.
        assert (resp.status_code == 200 and body["code"] == 4) or 400 <= resp.status_code < 500, body
    elif path.startswith("/midjourney/"):
        assert resp.status_code >= 400 and body["success"] is False and "trace_id" in body, body
        assert set(body["error"]) >= {"code", "message"}, body
    else:
        assert resp.status_code >= 400 and body["success"] is False and body["message"], body
        assert set(body) >= {"success", "message"}, body


async def test_relay_bodies_refused(client, db):
    relay = await make_relay(client, db)
    for path, body in _relay_bodies():
        resp = await client.post(path, content=_raw(body),
                                 headers={**relay.headers, "Content-Type": "application/json"})
        _assert_refused(path, resp)
    money = await relay.balances()
    assert money["used"] == 0 and money["quota"] == money["ledger"]  # nothing refused was charged


async def test_relay_paths_and_queries_refused(client, db):
    relay = await make_relay(client, db)
    admin = await make_user(db, "boss", role="admin")
    digits = "9" * 5000
    relay_paths = ["/mj/task/a%00b/fetch", "/mj/task/a%00b/image-seed", "/mj/image/a%00b",
                   f"/mj/image/1?expires={digits}&sig=x", "/mj/image/1?expires=%00&sig=x",
                   "/mj/task/list?x=%00"]
    for path in relay_paths:
        resp = await client.get(path, headers=relay.headers)
        _assert_refused(path, resp)
    admin_paths = ["/api/mj/?mj_id=a%00b", "/api/mj/?start_timestamp=99999999999999999999",
                   "/api/mj/?end_timestamp=99999999999999999999", "/api/mj/?channel_id=1e20",
                   f"/api/mj/?channel_id={digits}", "/api/mj/?user_id=99999999999999999999",
                   "/api/mj/?prompt=a%00b", "/api/mj/?username=a%00b", "/api/mj/self?mj_id=a%00b",
                   "/api/console/tasks/a%00b", "/api/console/tasks?ids=a%00b",
                   "/api/admin/users?q=a%00b", "/api/admin/keys?user_id=99999999999999999999",
                   "/api/admin/tasks/a%00b/refund", "/api/admin/dashboard?user_id=1e20",
                   "/api/admin/audit?target=a%00b", "/api/admin/ledger?user_id=99999999999999999999"]
    for path in admin_paths:
        method = "POST" if path.endswith("/refund") else "GET"
        resp = await client.request(method, path, headers={**admin["headers"], "Content-Type": "application/json"},
                                    content=b"{}" if method == "POST" else None)
        _assert_refused(path, resp)


async def test_console_and_admin_bodies_refused(client, db):
    console = await login(client, db, "root1", role="admin", quota=10**9)
    cases = [
        ("/api/console/submit/imagine", {"prompt": NUL}),
        ("/api/console/submit/imagine", {"prompt": SURROGATE}),
        ("/api/console/submit/imagine", DEEP),
        ("/api/console/submit/action", {"task_id": NUL, "custom_id": "MJ::JOB::upsample::1::x"}),
        ("/api/admin/keys", {"user_id": 7e23}),
        ("/api/admin/keys", {"user_id": 10**30}),
        ("/api/admin/keys", {"name": SURROGATE}),
        ("/api/admin/users", {"username": "x" + NUL, "password": "pw-pw-pw"}),
        ("/api/admin/users", DEEP),
        ("/api/admin/channels", {"name": NUL, "base_url": "http://127.0.0.1:9", "secret": "s"}),
    ]
    for path, body in cases:
        resp = await client.post(path, content=_raw(body),
                                 headers={"X-CSRF-Token": console.csrf, "Content-Type": "application/json"})
        _assert_refused(path, resp)
    for body in ({"username": NUL, "password": "x"}, {"username": SURROGATE, "password": "x"},
                 {"username": "root1", "password": NUL}, DEEP):
        resp = await client.post("/api/console/login", content=_raw(body), headers={"Content-Type": "application/json"})
        _assert_refused("/api/console/login", resp)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_body_within_the_bounds_still_works(client, db):
    """The guard refuses only what is out of bounds: nesting of a few levels and big ints inside int64 pass."""
    relay = await make_relay(client, db)
    resp = await client.post("/mj/task/list-by-condition", content=_raw({"ids": ["1"], "x": [[[{"y": 2**62}]]]}),
                             headers={**relay.headers, "Content-Type": "application/json"})
    assert resp.status_code == 200 and resp.json() == [], resp.text
