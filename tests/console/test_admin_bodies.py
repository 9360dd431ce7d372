"""Admin API edges (issue #10): duplicate channel names are a 409; POSTs with no body or an empty
one get a clear 4xx (or do their job, when the route takes no body), never a 500."""

from __future__ import annotations

from tests.console.helpers import data, fail, login
from tests.factories import make_key, make_user


async def test_duplicate_channel_names_are_refused(client, db):
    admin = await login(client, db, "boss", role="admin")
    first = data(await admin.post("/api/admin/channels", {"name": "Main", "base_url": "http://127.0.0.1:9"}), 201)
    for name in ("Main", "main", " MAIN "):
        message = fail(await admin.post("/api/admin/channels", {"name": name, "base_url": "http://127.0.0.1:8"}), 409)
        assert "already exists" in message and str(first["id"]) in message
    other = data(await admin.post("/api/admin/channels", {"name": "Spare", "base_url": "http://127.0.0.1:8"}), 201)
    fail(await admin.patch(f"/api/admin/channels/{other['id']}", {"name": "main"}), 409)
    # Renaming a channel to its own name (another case) is not a clash.
    assert data(await admin.patch(f"/api/admin/channels/{first['id']}", {"name": "MAIN"}))["name"] == "MAIN"


def _write_routes(app) -> list[tuple[str, str]]:
    """Every documented admin and console write route, from the OpenAPI schema clients read."""
    routes = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith(("/api/admin/", "/api/console/")):
            routes += [(method.upper(), path) for method in operations if method in ("post", "put", "patch")]
    return routes


async def test_write_routes_without_a_body_never_fail_with_500(app, client, db):
    admin = await make_user(db, "root1", role="root", password="pw-root1")
    target = await make_user(db, "target")
    key = await make_key(db, target["id"])
    ids = {"user_id": target["id"], "key_id": key["id"], "channel_id": 1, "mj_id": "404", "name": "no-such-rule"}
    routes = _write_routes(app)
    assert len(routes) > 15
    seen = {}
    for method, path in routes:
        url = path.format(**ids)
        for body, headers in ((None, {}), (b"", {"Content-Type": "application/json"}),
                              (b"   ", {"Content-Type": "application/json"})):
            resp = await client.request(method, url, content=body, headers={**admin["headers"], **headers})
            assert resp.status_code < 500, (method, url, body, resp.status_code, resp.text[:300])
            answer = resp.json()
            assert set(answer) >= {"success", "message"}, answer
            if resp.status_code >= 400:
                assert answer["success"] is False and answer["message"], answer
            seen[(method, path)] = resp.status_code
    # Routes that need a body say so in words; routes that take none just work without one.
    assert seen[("POST", "/api/admin/keys/{key_id}/disable")] == 200
    assert seen[("POST", "/api/admin/users")] == 400
    resp = await client.post("/api/admin/users", headers=admin["headers"])
    assert "needs a JSON object body" in resp.json()["message"], resp.text
