"""Each use of the master secret has its own derived key; values signed with the master before the
split (sessions, image URLs, notify URLs) stay valid until they expire."""

from __future__ import annotations

import pytest

from mjgate.auth import keyring, sessions
from mjgate.auth.credentials import verify_signature
from mjgate.images.signing import signed_image_path
from tests.factories import insert_tasks, make_user, task_row

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_every_purpose_has_its_own_key():
    ring = keyring.Keyring("master-secret")
    keys = {ring.key(p) for p in keyring.PURPOSES}
    assert len(keys) == len(keyring.PURPOSES) and "master-secret" not in keys
    assert keyring.Keyring("other-master").key(keyring.SESSION) != ring.key(keyring.SESSION)
    assert ring.accepted(keyring.IMAGE_URL) == (ring.key(keyring.IMAGE_URL), "master-secret")
    with pytest.raises(ValueError):
        ring.key("webhook")


@sqlite_only
async def test_new_sessions_use_the_session_key_and_old_ones_still_work(app, client, db):
    user = await make_user(db, "alice", password="alice-pw")
    resp = await client.post("/api/console/login", json={"username": "alice", "password": "alice-pw"})
    cookie = resp.cookies[sessions.COOKIE_NAME]
    body, sig = cookie.rsplit(".", 1)
    ring = app.state.keyring
    assert verify_signature(ring.key(keyring.SESSION), "session:" + body, sig)
    assert not verify_signature(app.state.secret_key, "session:" + body, sig)  # not the master
    # A cookie handed out before the split (signed with the master) is still accepted...
    client.cookies.clear()
    client.cookies.set(sessions.COOKIE_NAME, sessions.issue(app.state.secret_key, user["id"], 0, 60))
    assert (await client.get("/api/console/me")).status_code == 200
    # ...until it expires; and one signed with another purpose's key is not a session.
    client.cookies.set(sessions.COOKIE_NAME, sessions.issue(app.state.secret_key, user["id"], 0, -1))
    assert (await client.get("/api/console/me")).status_code == 401
    client.cookies.set(sessions.COOKIE_NAME, sessions.issue(ring.key(keyring.IMAGE_URL), user["id"], 0, 60))
    assert (await client.get("/api/console/me")).status_code == 401


@sqlite_only
async def test_image_urls_signed_before_and_after_the_split_are_accepted(app, client, db):
    user = await make_user(db, "bob")
    await insert_tasks(db, [task_row(user["id"], mj_id="img1", image_url="", status="SUCCESS")])
    links = app.state.links
    assert links.secret_key == app.state.keyring.key(keyring.IMAGE_URL)
    for key in (links.secret_key, app.state.secret_key):
        path = signed_image_path(key, "img1", 600)
        resp = await client.get(path)
        assert resp.status_code != 403, (key == links.secret_key, resp.status_code, resp.text)
    forged = signed_image_path(app.state.keyring.key(keyring.SESSION), "img1", 600)
    assert (await client.get(forged)).status_code == 403
