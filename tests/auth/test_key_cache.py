"""The short-lived cache of authenticated API keys: reused within its TTL, re-read after it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mjgate.accounts.keys import set_status
from mjgate.app import create_app
from tests.factories import make_key, make_user
from tests.fixtures.app import gateway_settings

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@sqlite_only
async def test_disabled_key_stops_working_within_the_ttl(db, db_url, tmp_path):
    app = create_app(gateway_settings(db_url, tmp_path).model_copy(update={"relay_auth_cache_s": 0.5}))
    user = await make_user(db, "cached")
    key = await make_key(db, user["id"])
    headers = {"Authorization": f"Bearer {key['key']}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            assert (await http.get("/mj/task/list", headers=headers)).status_code == 200
            async with db.write() as session:
                await set_status(session, key["id"], "disabled")
            # Within the TTL the cached key still answers; after it, the database decides.
            assert (await http.get("/mj/task/list", headers=headers)).status_code == 200
            await asyncio.sleep(0.6)
            assert (await http.get("/mj/task/list", headers=headers)).status_code == 401
            # Unknown keys are never cached as valid.
            assert (await http.get("/mj/task/list", headers={"Authorization": "Bearer sk-nope"})).status_code == 401
