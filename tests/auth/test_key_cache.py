"""The short-lived cache of authenticated callers: a change made through mjgate applies at once,
one made behind its back (SQL by hand, another process without Redis) within the TTL."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import update

from mjgate.accounts.keys import set_status
from mjgate.app import create_app
from mjgate.models import ApiKey
from tests.factories import make_key, make_user
from tests.fixtures.app import gateway_settings

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@sqlite_only
async def test_a_disabled_key_stops_working_at_once_or_within_the_ttl(db, db_url, tmp_path):
    app = create_app(gateway_settings(db_url, tmp_path, relay_auth_cache_s=0.5))
    user = await make_user(db, "cached")
    first, second = await make_key(db, user["id"]), await make_key(db, user["id"])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            def get(key):
                return http.get("/mj/task/list", headers={"Authorization": f"Bearer {key['key']}"})

            assert (await get(first)).status_code == 200 and (await get(second)).status_code == 200
            # Through mjgate's own code: the cached key is dropped when the change commits.
            async with db.write() as session:
                await set_status(session, first["id"], "disabled")
            assert (await get(first)).status_code == 401
            assert (await get(second)).status_code == 200  # cached again after the change
            # Behind mjgate's back: the cache answers until its TTL runs out, then the database decides.
            async with db.write() as session:
                await session.execute(update(ApiKey).where(ApiKey.id == second["id"]).values(status="disabled"))
            assert (await get(second)).status_code == 200
            await asyncio.sleep(0.6)
            assert (await get(second)).status_code == 401
            # Unknown keys are never cached as valid.
            assert (await http.get("/mj/task/list", headers={"Authorization": "Bearer sk-nope"})).status_code == 401
