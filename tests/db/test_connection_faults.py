"""Database connections dropped under the gateway's feet: never a 500, never a half-written task.

The server side kills every connection of the gateway's pool (as a restart or a failover would);
the next read is retried on a fresh connection, a write answers 503 with Retry-After at worst, and
the money still adds up.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.fixtures.relay import add_simulator_channel, make_relay

server_only = pytest.mark.parametrize("db_url", ["postgresql", "mysql"], indirect=True)


async def _kill_other_connections(db) -> int:
    async with db.write() as session:
        if db.dialect == "postgresql":
            rows = await session.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            return len(rows.all())
        ids = [row[0] for row in await session.execute(text(
            "SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()"))]
        for connection_id in ids:
            await session.execute(text(f"KILL CONNECTION {int(connection_id)}"))
        return len(ids)


@server_only
async def test_dropped_connections_are_retried_or_answered_503(client, db, app, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    first = await relay.post("/mj/submit/imagine", {"prompt": "before the outage"})
    assert first["code"] == 1
    # Fill the app's pool with idle connections, then have the server drop them all.
    for _ in range(3):
        assert (await client.get(f"/mj/task/{first['result']}/fetch", headers=relay.headers)).status_code == 200
    assert await _kill_other_connections(db) >= 1

    # A read finds a dead connection, which is thrown away, and runs again on a new one.
    resp = await client.get(f"/mj/task/{first['result']}/fetch", headers=relay.headers)
    assert resp.status_code == 200, resp.text

    await _kill_other_connections(db)
    statuses = []
    for i in range(4):
        resp = await client.post("/mj/submit/imagine", json={"prompt": f"during {i}"}, headers=relay.headers)
        statuses.append(resp.status_code)
        assert resp.status_code in (200, 503), resp.text
        if resp.status_code == 503:
            assert resp.headers["retry-after"] == "1" and resp.json()["code"] == 9
    assert statuses[-1] == 200  # the pool has recovered
    money = await relay.balances()
    assert money["quota"] == money["ledger"]
