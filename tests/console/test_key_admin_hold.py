"""A key an admin disabled can be enabled again only by an admin (issue #10 item 7)."""

from __future__ import annotations

from mjgate.accounts.keys import set_status
from tests.console.helpers import data, fail, login, new_client
from tests.factories import make_key


async def test_only_an_admin_lifts_an_admins_disabling(app, client, db):
    owner = await login(client, db, "owner")
    async with new_client(app) as admin_http:
        admin = await login(admin_http, db, "boss", role="admin")
        key = await make_key(db, owner.user["id"])
        disabled = data(await admin.post(f"/api/admin/keys/{key['id']}/disable"))
        assert disabled["status"] == "disabled" and disabled["disabled_by"] == "admin"

        message = fail(await owner.post(f"/api/admin/keys/{key['id']}/enable"), 403)
        assert "administrator" in message
        # Disabling it again does not turn the admin's hold into the owner's.
        data(await owner.post(f"/api/admin/keys/{key['id']}/disable"))
        fail(await owner.post(f"/api/admin/keys/{key['id']}/enable"), 403)

        enabled = data(await admin.post(f"/api/admin/keys/{key['id']}/enable"))
        assert enabled["status"] == "enabled" and enabled["disabled_by"] is None

    # The owner's own disabling is the owner's to lift.
    assert data(await owner.post(f"/api/admin/keys/{key['id']}/disable"))["disabled_by"] == "owner"
    assert data(await owner.post(f"/api/admin/keys/{key['id']}/enable"))["status"] == "enabled"


async def test_a_key_disabled_from_the_cli_is_held_too(client, db):
    """`mjgate token disable` acts as an admin (the CLI calls set_status without an owner)."""
    owner = await login(client, db, "owner")
    key = await make_key(db, owner.user["id"])
    async with db.write() as session:
        await set_status(session, key["id"], "disabled")
    fail(await owner.post(f"/api/admin/keys/{key['id']}/enable"), 403)
    relay = await client.post("/mj/task/list-by-condition", json={"ids": []},
                              headers={"Authorization": f"Bearer {key['key']}"})
    assert relay.status_code == 401
