"""Console login, logout, /me, the session cookie's attributes and the CSRF rules."""

from __future__ import annotations

import pytest

from mjgate.accounts.users import set_status
from mjgate.auth import sessions
from tests.console.helpers import data, fail, login, new_client
from tests.factories import make_user


def _cookie_header(resp) -> str:
    cookies = [v for k, v in resp.headers.multi_items() if k.lower() == "set-cookie"]
    assert len(cookies) == 1, cookies
    return cookies[0]


async def test_password_login_sets_a_safe_cookie(client, db):
    await make_user(db, "alice", password="secret-pw")
    resp = await client.post("/api/console/login", json={"username": "alice", "password": "secret-pw"})
    body = data(resp)
    assert body["user"]["username"] == "alice" and body["user"]["is_admin"] is False
    assert body["csrf_token"] and body["quota_per_usd"] == 500_000
    cookie = _cookie_header(resp)
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith(f"{sessions.COOKIE_NAME}=")
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back
    me = data(await client.get("/api/console/me"))
    assert me["user"]["username"] == "alice" and me["csrf_token"] == body["csrf_token"]
    # The same cookie authenticates the management API.
    assert (await client.get("/api/mj/self")).status_code == 200


async def test_cookie_is_secure_over_https(app, db):
    await make_user(db, "alice", password="secret-pw")
    async with new_client(app, "https://gateway.test") as http:
        resp = await http.post("/api/console/login", json={"username": "alice", "password": "secret-pw"})
        assert resp.status_code == 200
        assert "secure" in {p.strip().lower() for p in _cookie_header(resp).split(";")}


async def test_cookie_is_secure_behind_a_tls_proxy(client, db):
    await make_user(db, "alice", password="secret-pw")
    resp = await client.post("/api/console/login", json={"username": "alice", "password": "secret-pw"},
                             headers={"X-Forwarded-Proto": "https"})
    assert "secure" in {p.strip().lower() for p in _cookie_header(resp).split(";")}


async def test_access_token_login(client, db):
    alice = await make_user(db, "alice")
    body = data(await client.post("/api/console/login",
                                  json={"access_token": alice["access_token"], "user_id": alice["id"]}))
    assert body["user"]["id"] == alice["id"]
    assert (await client.get("/api/console/me")).status_code == 200


@pytest.mark.parametrize("body, status", [
    ({"username": "alice", "password": "nope"}, 401),
    ({"username": "nobody", "password": "whatever"}, 401),
    ({"username": "alice"}, 400),
    ({}, 400),
    ({"access_token": "0" * 32, "user_id": 1}, 401),
    ({"access_token": "0" * 32}, 400),
    ({"username": ["alice"], "password": "x"}, 400),
    ({"username": "a" * 65, "password": "x"}, 400),
    ({"access_token": "x", "user_id": "one"}, 400),
    ({"access_token": "x", "user_id": 10**30}, 400),
])
async def test_bad_logins_are_clear_json_errors(client, db, body, status):
    await make_user(db, "alice", password="secret-pw")
    fail(await client.post("/api/console/login", json=body), status)
    assert sessions.COOKIE_NAME not in client.cookies


async def test_access_token_of_another_user_id(client, db):
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bob")
    fail(await client.post("/api/console/login", json={"access_token": alice["access_token"], "user_id": bob["id"]}), 401)


async def test_user_without_password_cannot_use_password_login(client, db):
    await make_user(db, "apionly")
    fail(await client.post("/api/console/login", json={"username": "apionly", "password": ""}), 400)
    fail(await client.post("/api/console/login", json={"username": "apionly", "password": "guess"}), 401)


async def test_disabled_user_cannot_log_in(client, db):
    await make_user(db, "alice", password="secret-pw")
    async with db.write() as session:
        await set_status(session, "alice", "disabled")
    fail(await client.post("/api/console/login", json={"username": "alice", "password": "secret-pw"}), 403)


async def test_repeated_failures_are_throttled(client, db):
    await make_user(db, "victim", password="right-pw")
    for _ in range(10):
        fail(await client.post("/api/console/login", json={"username": "victim", "password": "wrong"}), 401)
    message = fail(await client.post("/api/console/login", json={"username": "victim", "password": "right-pw"}), 429)
    assert "too many" in message


async def test_me_requires_a_session(client, db):
    fail(await client.get("/api/console/me"), 401)
    client.cookies.set(sessions.COOKIE_NAME, "1.0.99999999999999.forged")
    fail(await client.get("/api/console/me"), 401)


async def test_logout_ends_the_session(client, db):
    console = await login(client, db, "alice")
    cookie = client.cookies.get(sessions.COOKIE_NAME)
    # Without the CSRF token a (cross-site) logout is refused and the session lives on.
    fail(await client.post("/api/console/logout", json={}), 403)
    assert (await client.get("/api/console/me")).status_code == 200
    resp = await console.post("/api/console/logout")
    assert data(resp) is None
    assert 'Max-Age=0' in _cookie_header(resp) or "expires=" in _cookie_header(resp).lower()
    # The old cookie is revoked server-side, not just forgotten by the browser.
    client.cookies.set(sessions.COOKIE_NAME, cookie)
    fail(await client.get("/api/console/me"), 401)
    fail(await client.get("/api/mj/self"), 401)


async def test_logout_without_session_just_clears(client, db):
    assert data(await client.post("/api/console/logout", json={})) is None


# ------------------------------------------------------------------ CSRF


async def test_login_refuses_cross_site_and_form_posts(client, db):
    await make_user(db, "alice", password="secret-pw")
    # An HTML form cannot send JSON: a form post is refused before anything is read.
    resp = await client.post("/api/console/login", data={"username": "alice", "password": "secret-pw"})
    assert "csrf" in fail(resp, 403).lower() or "json" in fail(resp, 403).lower()
    resp = await client.post("/api/console/login", content='{"username": "alice", "password": "secret-pw"}',
                             headers={"Content-Type": "text/plain"})
    fail(resp, 403)
    resp = await client.post("/api/console/login", json={"username": "alice", "password": "secret-pw"},
                             headers={"Origin": "https://evil.example"})
    fail(resp, 403)
    resp = await client.post("/api/console/login", json={"username": "alice", "password": "secret-pw"},
                             headers={"Sec-Fetch-Site": "cross-site"})
    fail(resp, 403)
    assert sessions.COOKIE_NAME not in client.cookies
    # Same origin is fine.
    resp = await client.post("/api/console/login", json={"username": "alice", "password": "secret-pw"},
                             headers={"Origin": "http://gateway.test", "Sec-Fetch-Site": "same-origin"})
    assert resp.status_code == 200


async def test_invalid_json_is_400(client, db):
    resp = await client.post("/api/console/login", content="{not json", headers={"Content-Type": "application/json"})
    fail(resp, 400)


STATE_CHANGING = [
    ("POST", "/api/console/submit/imagine", {"prompt": "a cat"}),
    ("POST", "/api/console/submit/action", {"task_id": "1", "custom_id": "MJ::JOB::upsample::1::x"}),
    ("POST", "/api/admin/users", {"username": "mallory"}),
    ("POST", "/api/admin/users/1/topup", {"amount": 1000}),
    ("POST", "/api/admin/keys", {"name": "stolen"}),
    ("POST", "/api/admin/channels", {"name": "x", "base_url": "http://127.0.0.1:9"}),
    ("PUT", "/api/admin/prices", {"mode_ratios": {"fast": 0}}),
]


@pytest.mark.parametrize("method, path, body", STATE_CHANGING)
async def test_state_changes_need_the_csrf_token(client, db, method, path, body):
    console = await login(client, db, "boss", role="admin")
    # No token, a wrong token, a form body, or a foreign origin: all refused with 403.
    fail(await client.request(method, path, json=body), 403)
    fail(await client.request(method, path, json=body, headers={"X-CSRF-Token": "forged"}), 403)
    fail(await client.request(method, path, data={"x": "1"}, headers={"X-CSRF-Token": console.csrf}), 403)
    fail(await client.request(method, path, json=body, headers={"X-CSRF-Token": console.csrf,
                                                              "Origin": "https://evil.example"}), 403)
    async with db.read() as session:
        from sqlalchemy import func, select

        from mjgate.models import ApiKey, Channel, Option, Task, User

        counts = [await session.scalar(select(func.count()).select_from(m)) for m in (ApiKey, Channel, Option, Task)]
        users = await session.scalar(select(func.count()).select_from(User))
        balance = (await session.get(User, console.user["id"])).quota
    assert counts == [0, 0, 0, 0] and users == 1 and balance == 0


async def test_csrf_token_is_bound_to_the_session(app, db):
    async with new_client(app) as a, new_client(app) as b:
        alice = await login(a, db, "alice", role="admin")
        bob = await login(b, db, "bob", role="admin")
        # Bob's token does not work with Alice's cookie.
        fail(await a.post("/api/admin/keys", json={"name": "k"}, headers={"X-CSRF-Token": bob.csrf}), 403)
        assert (await alice.post("/api/admin/keys", {"name": "k"})).status_code == 201


async def test_access_token_clients_need_no_csrf_token(client, db):
    boss = await make_user(db, "boss", role="admin")
    resp = await client.post("/api/admin/keys", json={"name": "scripted"}, headers=boss["headers"])
    assert resp.status_code == 201, resp.text
    # ...but still JSON: a form post with a token in it is refused.
    fail(await client.post("/api/admin/keys", data={"name": "x"}, headers=boss["headers"]), 403)


async def test_reads_need_no_csrf_token(client, db):
    await login(client, db, "boss", role="admin")
    for path in ("/api/admin/users", "/api/admin/channels", "/api/admin/prices", "/api/admin/ledger",
                 "/api/admin/keys", "/api/console/me"):
        assert (await client.get(path)).status_code == 200, path


async def test_console_page_and_assets_are_served(client, db):
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert '<script type="module" src="/assets/js/app.js">' in page.text
    for asset, kind in [("/assets/js/app.js", "javascript"), ("/assets/app.css", "text/css"),
                        ("/assets/js/tasks.js", "javascript")]:
        resp = await client.get(asset)
        assert resp.status_code == 200 and kind in resp.headers["content-type"], asset
    assert (await client.get("/assets/nope.js")).status_code == 404
    assert (await client.get("/assets/../app.py")).status_code == 404
