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


async def test_concurrent_misses_of_one_key_read_it_once(db, db_url, tmp_path):
    """When the entry has expired, 32 requests with the same key at once send one read of the key,
    not 32 (the stampede the fetch benchmark showed after every expiry)."""
    from sqlalchemy import event

    app = create_app(gateway_settings(db_url, tmp_path, relay_auth_cache_s=30))
    user = await make_user(db, "stampede")
    key = await make_key(db, user["id"])
    async with app.router.lifespan_context(app):
        key_reads: list[str] = []

        def count(conn, cursor, statement, *args):
            if "FROM api_keys" in statement:
                key_reads.append(statement)

        engines = {app.state.db.read_engine.sync_engine, app.state.db.write_engine.sync_engine}
        for engine in engines:
            event.listen(engine, "before_cursor_execute", count)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            headers = {"Authorization": f"Bearer {key['key']}"}
            answers = await asyncio.gather(*(http.get("/mj/task/list", headers=headers) for _ in range(32)))
            assert [a.status_code for a in answers] == [200] * 32
            assert len(key_reads) == 1, key_reads
            # A bad key's misses are shared too, and it is still refused every time (never cached).
            bad = await asyncio.gather(*(http.get("/mj/task/list", headers={"Authorization": "Bearer sk-nope"})
                                         for _ in range(8)))
            assert [a.status_code for a in bad] == [401] * 8
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
