"""The admin API: users and top-ups, keys, channels (with a real test call), prices, the ledger."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mjgate.billing.ledger import ledger_balance
from mjgate.billing.pricing import QUOTA_PER_USD, price_of
from mjgate.models import Channel, LedgerEntry, User
from tests.console.helpers import data, fail, login, new_client
from tests.factories import insert_tasks, make_channel, make_user, task_row

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

ADMIN_ONLY = [
    ("GET", "/api/admin/users", None),
    ("POST", "/api/admin/users", {"username": "eve"}),
    ("POST", "/api/admin/users/1/topup", {"amount": 1}),
    ("POST", "/api/admin/users/1/disable", {}),
    ("POST", "/api/admin/users/1/enable", {}),
    ("GET", "/api/admin/channels", None),
    ("POST", "/api/admin/channels", {"name": "x", "base_url": "http://127.0.0.1:9"}),
    ("PATCH", "/api/admin/channels/1", {"priority": 1}),
    ("POST", "/api/admin/channels/1/disable", {}),
    ("POST", "/api/admin/channels/1/enable", {}),
    ("POST", "/api/admin/channels/1/test", {}),
    ("GET", "/api/admin/prices", None),
    ("PUT", "/api/admin/prices", {"mode_ratios": {"fast": 0}}),
    ("GET", "/api/admin/ledger", None),
]


@pytest.mark.parametrize("method, path, body", ADMIN_ONLY)
async def test_admin_routes_refuse_users_and_strangers(app, db, method, path, body):
    async with new_client(app) as anonymous, new_client(app) as http:
        user = await login(http, db, "alice", quota=1000)
        kwargs = {} if body is None else {"json": body}
        fail(await anonymous.request(method, path, **kwargs), 401)
        fail(await http.request(method, path, headers={"X-CSRF-Token": user.csrf}, **kwargs), 403)
        # Nothing changed: alice's balance is as it was and still equals the ledger.
        async with db.read() as session:
            me = await session.get(User, user.user["id"])
            assert me.quota == 1000 == await ledger_balance(session, me.id) and me.enabled


# ------------------------------------------------------------------ users


async def test_create_list_and_search_users(app, client, db):
    boss = await login(client, db, "boss", role="admin")
    created = data(await boss.post("/api/admin/users", {"username": "carol", "password": "pw-carol", "quota": 250_000}), 201)
    assert created["username"] == "carol" and created["quota"] == 250_000 and len(created["access_token"]) == 32
    # The new user can log in, and the access token works for the management API.
    async with new_client(app) as other:
        assert (await other.post("/api/console/login", json={"username": "carol", "password": "pw-carol"})).status_code == 200
    headers = {"Authorization": f"Bearer {created['access_token']}", "New-Api-User": str(created["id"])}
    assert (await client.get("/api/mj/self", headers=headers)).status_code == 200
    for i in range(3):
        await make_user(db, f"zed{i}")
    page = data(await boss.get("/api/admin/users?page_size=2&p=2"))
    assert page["total"] == 5 and page["page"] == 2 and len(page["items"]) == 2
    assert [u["username"] for u in data(await boss.get("/api/admin/users?q=zed"))["items"]] == ["zed0", "zed1", "zed2"]
    assert data(await boss.get("/api/admin/users?q=%25"))["items"] == []  # LIKE wildcards are literal
    assert "password_hash" not in page["items"][0] and "access_token_hash" not in page["items"][0]
    async with db.read() as session:
        entry = (await session.scalars(select(LedgerEntry).where(LedgerEntry.user_id == created["id"]))).one()
    assert entry.kind == "topup" and entry.amount == 250_000 and entry.actor_user_id == boss.user["id"]


@pytest.mark.parametrize("body", [
    {},
    {"username": ""},
    {"username": "has space"},
    {"username": "x" * 65},
    {"username": "ok", "role": "god"},
    {"username": "ok", "password": "abc"},
    {"username": "ok", "quota": -1},
    {"username": "ok", "quota": 10**20},
    {"username": "ok", "group": ""},
    {"username": "ok", "unknown_field": 1},
    {"username": 5},
])
async def test_bad_user_bodies_are_400(client, db, body):
    boss = await login(client, db, "boss", role="admin")
    fail(await boss.post("/api/admin/users", body), 400)


async def test_duplicate_user_and_root_rules(client, db):
    boss = await login(client, db, "boss", role="admin")
    assert "already exists" in fail(await boss.post("/api/admin/users", {"username": "boss"}), 400)
    fail(await boss.post("/api/admin/users", {"username": "king", "role": "root"}), 403)
    root = await make_user(db, "root", role="root")
    fail(await boss.post(f"/api/admin/users/{root['id']}/disable"), 403)
    fail(await boss.post(f"/api/admin/users/{boss.user['id']}/disable"), 400)
    fail(await boss.post("/api/admin/users/999999/disable"), 404)
    fail(await boss.post("/api/admin/users/0/disable"), 400)
    fail(await boss.post("/api/admin/users/abc/disable"), 400)
    fail(await boss.post(f"/api/admin/users/{10**30}/disable"), 400)


async def test_disable_and_enable_a_user(app, db):
    async with new_client(app) as admin_http, new_client(app) as user_http:
        boss = await login(admin_http, db, "boss", role="admin")
        alice = await login(user_http, db, "alice")
        assert data(await boss.post(f"/api/admin/users/{alice.user['id']}/disable"))["status"] == "disabled"
        # Her console session ends at once (session_version bumped).
        fail(await user_http.get("/api/console/me"), 401)
        assert data(await boss.post(f"/api/admin/users/{alice.user['id']}/enable"))["status"] == "enabled"


async def test_top_up_writes_a_ledger_row_and_balance_equals_ledger(client, db):
    boss = await login(client, db, "boss", role="admin")
    alice = await make_user(db, "alice", quota=1_000)
    result = data(await boss.post(f"/api/admin/users/{alice['id']}/topup", {"amount": 250_000, "memo": "invoice 7"}))
    assert result["quota"] == 251_000 == result["ledger_balance"] and result["amount"] == 250_000
    result = data(await boss.post(f"/api/admin/users/{alice['id']}/topup", {"amount_usd": 1.5}))
    assert result["quota"] == 251_000 + 750_000 == result["ledger_balance"]
    result = data(await boss.post(f"/api/admin/users/{alice['id']}/topup", {"amount": -1_000, "kind": "adjust"}))
    assert result["quota"] == 1_000_000 == result["ledger_balance"]
    async with db.read() as session:
        rows = list(await session.scalars(
            select(LedgerEntry).where(LedgerEntry.user_id == alice["id"]).order_by(LedgerEntry.id)))
        user = await session.get(User, alice["id"])
        assert user.quota == await ledger_balance(session, alice["id"]) == 1_000_000
    assert [(r.kind, r.amount, r.memo) for r in rows] == [
        ("topup", 1_000, "test"), ("topup", 250_000, "invoice 7"), ("topup", 750_000, "by boss"), ("adjust", -1_000, "by boss")]
    assert all(r.actor_user_id == boss.user["id"] for r in rows[1:])


@pytest.mark.parametrize("body, status", [
    ({}, 400),
    ({"amount": 0}, 400),
    ({"amount": -5}, 400),  # a top-up is positive; take quota away with kind=adjust
    ({"amount": -10**9, "kind": "adjust"}, 400),  # may not overdraw
    ({"amount": 10, "amount_usd": 1}, 400),
    ({"amount": "lots"}, 400),
    ({"amount": 1.5}, 400),
    ({"amount": 10**16}, 400),
    ({"amount_usd": float("1e300")}, 400),
    ({"amount": 10, "kind": "refund"}, 400),
    ({"amount": 10, "memo": "m" * 501}, 400),
])
async def test_bad_top_ups_change_nothing(client, db, body, status):
    boss = await login(client, db, "boss", role="admin")
    alice = await make_user(db, "alice", quota=1_000)
    fail(await boss.post(f"/api/admin/users/{alice['id']}/topup", body), status)
    async with db.read() as session:
        assert (await session.get(User, alice["id"])).quota == 1_000 == await ledger_balance(session, alice["id"])


async def test_top_up_of_a_missing_user_is_404(client, db):
    boss = await login(client, db, "boss", role="admin")
    fail(await boss.post("/api/admin/users/424242/topup", {"amount": 5}), 404)


# ------------------------------------------------------------------ keys


async def test_users_manage_only_their_own_keys(app, db):
    async with new_client(app) as a, new_client(app) as b:
        alice = await login(a, db, "alice")
        bob = await login(b, db, "bob")
        created = data(await alice.post("/api/admin/keys", {"name": "bot", "quota": 5_000, "allowed_actions": ["imagine"]}), 201)
        assert created["key"].startswith("sk-") and created["unlimited"] is False and created["remain_quota"] == 5_000
        assert created["allowed_actions"] == ["IMAGINE"] and created["user_id"] == alice.user["id"]
        listing = data(await alice.get("/api/admin/keys"))
        assert [k["id"] for k in listing["items"]] == [created["id"]] and "key" not in listing["items"][0]
        assert data(await bob.get("/api/admin/keys"))["items"] == []
        fail(await bob.get(f"/api/admin/keys?user_id={alice.user['id']}"), 403)
        fail(await bob.post("/api/admin/keys", {"user_id": alice.user["id"], "name": "mine now"}), 403)
        fail(await bob.post(f"/api/admin/keys/{created['id']}/disable"), 404)
        assert data(await alice.post(f"/api/admin/keys/{created['id']}/disable"))["status"] == "disabled"
        # A disabled key no longer authenticates the relay.
        resp = await a.get("/mj/task/list", headers={"Authorization": f"Bearer {created['key']}"})
        assert resp.status_code == 401
        assert data(await alice.post(f"/api/admin/keys/{created['id']}/enable"))["status"] == "enabled"
        resp = await a.get("/mj/task/list", headers={"Authorization": f"Bearer {created['key']}"})
        assert resp.status_code == 200


async def test_admin_sees_and_creates_anyones_keys(client, db):
    boss = await login(client, db, "boss", role="admin")
    alice = await make_user(db, "alice")
    created = data(await boss.post("/api/admin/keys", {"user_id": alice["id"], "name": "for alice"}), 201)
    assert created["user_id"] == alice["id"] and created["unlimited"] is True
    await boss.post("/api/admin/keys", {"name": "mine"})
    everyone = data(await boss.get("/api/admin/keys"))["items"]
    assert {(k["username"], k["name"]) for k in everyone} == {("alice", "for alice"), ("boss", "mine")}
    only_alice = data(await boss.get(f"/api/admin/keys?user_id={alice['id']}"))["items"]
    assert [k["name"] for k in only_alice] == ["for alice"]
    fail(await boss.post("/api/admin/keys", {"user_id": 999999}), 404)
    fail(await boss.post("/api/admin/keys/999999/disable"), 404)


@pytest.mark.parametrize("body", [
    {"quota": -1},
    {"name": "n" * 129},
    {"allowed_actions": ["TELEPORT"]},
    {"allowed_ips": ["not-an-ip"]},
    {"allowed_ips": "10.0.0.1"},
    {"expires_at": -5},
    {"user_id": "me"},
])
async def test_bad_key_bodies_are_400(client, db, body):
    alice = await login(client, db, "alice")
    fail(await alice.post("/api/admin/keys", body), 400)


# ------------------------------------------------------------------ channels


@sqlite_only
async def test_channel_lifecycle_and_real_test_call(client, db, simulator_session):
    boss = await login(client, db, "boss", role="admin")
    channel = data(await boss.post("/api/admin/channels", {
        "name": "sim", "base_url": simulator_session.base_url + "/", "secret": simulator_session.secret,
        "modes": ["fast", "relax"], "groups": ["default", "vip"], "priority": 3,
    }), 201)
    assert channel["base_url"] == simulator_session.base_url and channel["modes"] == ["fast", "relax"]
    assert simulator_session.secret not in str(channel)  # never echoed back in full
    tested = data(await boss.post(f"/api/admin/channels/{channel['id']}/test"))
    assert tested["ok"] is True and tested["error"] == "" and tested["latency_ms"] >= 0
    assert tested["channel"]["health"]["success_count"] == 1 and tested["channel"]["health"]["last_ok_at"]
    calls = [r for r in simulator_session.requests() if r["path"].endswith("/mj/task/list-by-condition")]
    assert calls and calls[-1]["headers"]["mj-api-secret"] == simulator_session.secret

    # A wrong secret: the test fails and the failure is recorded.
    edited = data(await boss.patch(f"/api/admin/channels/{channel['id']}", {"secret": "wrong", "weight": 7}))
    assert edited["weight"] == 7 and edited["priority"] == 3
    tested = data(await boss.post(f"/api/admin/channels/{channel['id']}/test"))
    assert tested["ok"] is False and tested["error"]
    health = tested["channel"]["health"]
    assert health["failure_count"] == 1 and health["consecutive_failures"] == 1 and health["last_error"].startswith("test:")

    assert data(await boss.post(f"/api/admin/channels/{channel['id']}/disable"))["status"] == "manual_disabled"
    enabled = data(await boss.post(f"/api/admin/channels/{channel['id']}/enable"))
    assert enabled["status"] == "enabled" and enabled["health"]["consecutive_failures"] == 0
    # An omitted secret keeps the stored one.
    data(await boss.patch(f"/api/admin/channels/{channel['id']}", {"secret": simulator_session.secret}))
    data(await boss.patch(f"/api/admin/channels/{channel['id']}", {"name": "renamed"}))
    async with db.read() as session:
        stored = await session.get(Channel, channel["id"])
    assert stored.secret == simulator_session.secret and stored.name == "renamed"
    listing = data(await boss.get("/api/admin/channels"))
    assert [c["name"] for c in listing["items"]] == ["renamed"]


async def test_testing_an_unreachable_channel_records_the_failure(client, db):
    boss = await login(client, db, "boss", role="admin")
    channel_id = await make_channel(db, "dead", "http://127.0.0.1:9")
    tested = data(await boss.post(f"/api/admin/channels/{channel_id}/test"))
    assert tested["ok"] is False and tested["channel"]["health"]["failure_count"] == 1
    fail(await boss.post("/api/admin/channels/999999/test"), 404)


@pytest.mark.parametrize("body", [
    {},
    {"name": "x"},
    {"name": "x", "base_url": "ftp://example.com"},
    {"name": "x", "base_url": "not a url"},
    {"name": "x", "base_url": "http://127.0.0.1:9", "modes": ["warp"]},
    {"name": "x", "base_url": "http://127.0.0.1:9", "modes": []},
    {"name": "x", "base_url": "http://127.0.0.1:9", "groups": []},
    {"name": "x", "base_url": "http://127.0.0.1:9", "weight": -1},
    {"name": "x", "base_url": "http://127.0.0.1:9", "priority": "high"},
    {"name": "x", "base_url": "http://127.0.0.1:9", "status": "enabled"},
    {"name": "x" * 129, "base_url": "http://127.0.0.1:9"},
    {"name": "x", "base_url": "http://h/" + "a" * 600},
])
async def test_bad_channel_bodies_are_400(client, db, body):
    boss = await login(client, db, "boss", role="admin")
    fail(await boss.post("/api/admin/channels", body), 400)
    async with db.read() as session:
        assert list(await session.scalars(select(Channel))) == []


async def test_bad_channel_edits_are_400(client, db):
    boss = await login(client, db, "boss", role="admin")
    channel_id = await make_channel(db, "ch")
    for body in ({}, {"name": None}, {"modes": None}, {"health": {}}, {"base_url": "javascript:alert(1)"}):
        fail(await boss.patch(f"/api/admin/channels/{channel_id}", body), 400)
    fail(await boss.patch("/api/admin/channels/999999", {"name": "x"}), 404)


# ------------------------------------------------------------------ prices


async def test_prices_get_and_set(client, db):
    boss = await login(client, db, "boss", role="admin")
    prices = data(await boss.get("/api/admin/prices"))
    assert prices["quota_per_usd"] == QUOTA_PER_USD
    assert prices["tables"]["mj_action_prices"]["mj_imagine"] == 0.1
    assert prices["tables"]["mode_ratios"] == {"fast": 1, "relax": 0.5, "turbo": 2}
    updated = data(await boss.put("/api/admin/prices", {
        "mj_action_prices": {"mj_imagine": 0.2}, "group_ratios": {"vip": 0.5, "partners": 0.8}, "mode_ratios": {"relax": 0.25},
    }))
    tables = updated["tables"]
    assert tables["mj_action_prices"]["mj_imagine"] == 0.2 and tables["mj_action_prices"]["mj_upscale"] == 0.05
    assert tables["group_ratios"]["partners"] == 0.8 and tables["group_ratios"]["default"] == 1
    assert tables["mode_ratios"] == {"fast": 1, "relax": 0.25, "turbo": 2}
    async with db.read() as session:
        # The service prices new tasks with the new tables.
        assert await price_of(session, "IMAGINE", "vip", "relax") == int(0.2 * 0.5 * 0.25 * QUOTA_PER_USD)
    assert data(await boss.get("/api/admin/prices"))["tables"] == tables


@pytest.mark.parametrize("body", [
    {},
    {"mj_action_prices": {"mj_imagine": -1}},
    {"mj_action_prices": {"mj_teleport": 1}},
    {"mj_action_prices": {"mj_imagine": "cheap"}},
    {"mj_action_prices": {"mj_imagine": True}},
    {"mode_ratios": {"warp": 2}},
    {"group_ratios": {"": 1}},
    {"group_ratios": {"vip": 10**9}},
    {"group_ratios": [1, 2]},
    {"options": {}},
])
async def test_bad_price_bodies_are_400(client, db, body):
    boss = await login(client, db, "boss", role="admin")
    fail(await boss.put("/api/admin/prices", body), 400)


# ------------------------------------------------------------------ ledger


async def test_ledger_listing_pages_and_filters(client, db):
    boss = await login(client, db, "boss", role="admin")
    alice = await make_user(db, "alice", quota=5_000)
    bob = await make_user(db, "bob", quota=7_000)
    for amount in (1, 2, 3):
        await boss.post(f"/api/admin/users/{alice['id']}/topup", {"amount": amount})
    await insert_tasks(db, [task_row(alice["id"], mj_id="t-ledger", quota=100)])
    page = data(await boss.get("/api/admin/ledger?page_size=2"))
    assert page["total"] == 5 and len(page["items"]) == 2 and page["page"] == 1
    assert [e["amount"] for e in page["items"]] == [3, 2]  # newest first
    first = page["items"][0]
    assert first["username"] == "alice" and first["kind"] == "topup" and first["actor_user_id"] == boss.user["id"]
    assert data(await boss.get("/api/admin/ledger?page_size=2&p=3"))["items"][0]["amount"] == 5_000
    only_bob = data(await boss.get(f"/api/admin/ledger?user_id={bob['id']}"))
    assert only_bob["total"] == 1 and only_bob["items"][0]["amount"] == 7_000
    assert data(await boss.get("/api/admin/ledger?kind=charge"))["total"] == 0
    for query in ("kind=bogus", "p=0", "p=x", "page_size=1000", "user_id=-1", "user_id=99999999999999999999999"):
        fail(await boss.get(f"/api/admin/ledger?{query}"), 400)
