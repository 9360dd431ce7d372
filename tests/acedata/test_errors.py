"""Every AceData error code: `{success: false, error: {code, message}, trace_id}` plus X-Trace-Id."""

from __future__ import annotations

import httpx
import pytest

from mjgate.dialects.acedata import routes as acedata_routes
from tests.acedata.conftest import PNG_DATA_URI, Ace, app_with, make_ace
from tests.factories import make_key, make_user
from tests.fixtures.relay import Relay, add_simulator_channel, make_relay

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def assert_error(resp: httpx.Response, status: int, code: str, fragment: str = "") -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"success", "error", "trace_id"}, body
    assert body["success"] is False and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert fragment in body["error"]["message"], body
    assert body["trace_id"] and body["trace_id"] == resp.headers["x-trace-id"]
    return body


@sqlite_only
async def test_invalid_token(client, db):
    for headers in ({}, {"Authorization": "Bearer sk-not-a-key"}, {"Authorization": "Bearer "}):
        for path in ("/midjourney/imagine", "/midjourney/tasks", "/midjourney/describe", "/midjourney/videos"):
            resp = await client.post(path, json={"prompt": "x", "action": "retrieve", "id": "1"}, headers=headers)
            assert_error(resp, 401, "invalid_token")
    user = await make_user(db, "eve", quota=10**8)
    key = await make_key(db, user["id"], expires_at=1)
    resp = await client.post("/midjourney/tasks", json={"id": "1"}, headers={"Authorization": f"Bearer {key['key']}"})
    assert_error(resp, 401, "invalid_token", "expired")


@sqlite_only
async def test_bad_request_kinds(ace):
    cases = [
        ({"action": "generate"}, "prompt is required"),
        ({"prompt": "   "}, "prompt is required"),
        ({"prompt": "x", "mode": "warp"}, "mode"),
        ({"prompt": "x", "timeout": "soon"}, "timeout"),
        ({"prompt": "x", "timeout": -5}, "timeout"),
        ({"prompt": "x", "async": "perhaps"}, "async"),
        ({"prompt": "x", "callback_url": "ftp://example.com/hook"}, "callback_url"),
        ({"prompt": "x", "version": "latest"}, "version"),
        ({"prompt": "x", "quality": "max"}, "quality"),
        ({"prompt": ["a", "list"]}, "prompt must be a string"),
        ({"action": "upscale1", "image_id": {"id": 1}}, "image_id"),
    ]
    for body, fragment in cases:
        assert_error(await ace.call("/midjourney/imagine", body), 400, "bad_request", fragment)
    for raw in (b"not json", b"[1, 2]", b""):
        resp = await ace.client.post("/midjourney/imagine", content=raw,
                                     headers={**ace.headers, "Content-Type": "application/json"})
        assert_error(resp, 400, "bad_request")
    assert (await ace.relay.balances())["used"] == 0


@sqlite_only
async def test_not_implemented(ace):
    assert_error(await ace.call("/midjourney/imagine", {"action": "explode", "prompt": "x"}), 400,
                 "api_not_implemented", "explode")
    assert_error(await ace.call("/midjourney/tasks", {"action": "explode", "id": "1"}), 400, "api_not_implemented")
    # cancel exists: of an unknown task it is a plain not-found
    assert_error(await ace.call("/midjourney/tasks", {"action": "cancel", "id": "1"}), 404, "not_found")
    for path in ("/midjourney/videos", "/midjourney/edits", "/midjourney/translate", "/midjourney/a/b"):
        assert_error(await ace.call(path, {"prompt": "x"}), 400, "api_not_implemented", path)


@sqlite_only
async def test_token_mismatched_when_the_key_is_for_other_actions(client, db, simulator_session):
    user = await make_user(db, "dora", quota=10**8)
    key = await make_key(db, user["id"], allowed_actions=["DESCRIBE"])
    await add_simulator_channel(db, simulator_session)
    ace = Ace(Relay(client, db, user, key))
    assert_error(await ace.call("/midjourney/imagine", {"prompt": "a fox"}), 400, "token_mismatched", "IMAGINE")
    answer = await ace.ok("/midjourney/describe", {"image_url": PNG_DATA_URI, "async": True})
    assert answer["success"] is True


@sqlite_only
async def test_used_up(client, db, simulator_session):
    broke = await make_ace(client, db, simulator_session, quota=0, name="broke")
    assert_error(await broke.call("/midjourney/imagine", {"prompt": "a fox"}), 403, "used_up")
    limited = Ace(await make_relay(client, db, key_quota=10, name="limited"))
    assert_error(await limited.call("/midjourney/imagine", {"prompt": "a fox"}), 403, "used_up", "key")
    assert simulator_session.requests() == []


@sqlite_only
async def test_api_error_when_no_channel_serves(client, db):
    ace = Ace(await make_relay(client, db))
    body = assert_error(await ace.call("/midjourney/imagine", {"prompt": "a fox"}), 500, "api_error", "no channel")
    assert "task_id" not in body
    assert (await ace.relay.balances())["used"] == 0


@sqlite_only
async def test_unexpected_error_is_api_error_with_trace(ace, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(acedata_routes, "_retrieve_batch", broken)
    body = assert_error(await ace.call("/midjourney/tasks", {"action": "retrieve_batch"}), 500, "api_error")
    assert "boom" not in body["error"]["message"]


@sqlite_only
async def test_too_many_requests(db, db_url, tmp_path, simulator_session):
    application = app_with(db_url, tmp_path, rate_limit_per_minute=3)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            ace = await make_ace(client, db, simulator_session)
            other = Ace(await make_relay(client, db, name="bob"))
            remaining = []
            for _ in range(3):
                resp = await ace.call("/midjourney/tasks", {"action": "retrieve_batch"})
                assert resp.status_code == 200, resp.text
                assert resp.headers["x-ratelimit-limit"] == "3"
                remaining.append(int(resp.headers["x-ratelimit-remaining"]))
            assert remaining == [2, 1, 0]
            for path, body in (("/midjourney/tasks", {"action": "retrieve_batch"}),
                               ("/midjourney/imagine", {"prompt": "a fox"})):
                resp = await ace.call(path, body)
                assert_error(resp, 429, "too_many_requests", "3 per minute")
                assert 1 <= int(resp.headers["retry-after"]) <= 20
            # Per key: another key is not affected, and a refused request costs nothing.
            assert (await other.call("/midjourney/tasks", {"action": "retrieve_batch"})).status_code == 200
            assert simulator_session.requests() == []
            # Bad keys are refused before the limiter, and do not use up anyone's allowance.
            resp = await client.post("/midjourney/tasks", json={}, headers={"Authorization": "Bearer sk-nope"})
            assert_error(resp, 401, "invalid_token")
