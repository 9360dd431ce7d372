"""Admin actions on a task: refund once, force-fail with refund, re-poll; each one audited."""

from __future__ import annotations

from contextlib import aclosing

import pytest

from mjgate.billing.ledger import ledger_balance
from mjgate.models import LedgerEntry, User
from mjgate.tasks.repository import get_by_mj_id
from tests.console.helpers import data, fail, login, new_client
from tests.factories import insert_tasks, make_user, task_row

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def _setup(app, db):
    http = new_client(app)
    admin = await login(http, db, "boss", role="admin")
    owner = await make_user(db, "payer", quota=1000)
    # Charged tasks, as the relay leaves them: the balance already paid, the ledger says so.
    async with db.write() as session:
        user = await session.get(User, owner["id"])
        user.quota -= 300
        user.used_quota += 300
    await insert_tasks(db, [task_row(owner["id"], mj_id="done", quota=100),
                            task_row(owner["id"], mj_id="running", status="IN_PROGRESS", progress="40%", quota=200,
                                     finish_time=None, next_poll_at=10**15)])
    async with db.write() as session:
        for mj_id in ("done", "running"):
            task = await get_by_mj_id(session, mj_id)
            session.add(LedgerEntry(user_id=owner["id"], task_id=task.id, kind="charge", amount=-task.quota,
                                    memo="", created_at=1))
    return http, admin, owner


async def _money(db, user_id):
    async with db.read() as session:
        return (await session.get(User, user_id)).quota, await ledger_balance(session, user_id)


@sqlite_only
async def test_refund_once_and_audited(app, db):
    http, admin, owner = await _setup(app, db)
    async with aclosing(http):
        assert data(await admin.post("/api/admin/tasks/done/refund", {"reason": "blurry"}))["refunded"] == 100
        assert "already" in fail(await admin.post("/api/admin/tasks/done/refund", {}), 400)
        fail(await admin.post("/api/admin/tasks/nope/refund", {}), 404)
        balance, ledger = await _money(db, owner["id"])
        assert balance == ledger == 800
        audit = data(await admin.get("/api/admin/audit?target=task:done"))
        assert [e["action"] for e in audit["items"]] == ["refund"] and audit["items"][0]["actor_user_id"] == admin.user["id"]


@sqlite_only
async def test_force_fail_refunds_and_repoll_needs_unfinished(app, db):
    http, admin, owner = await _setup(app, db)
    async with aclosing(http):
        fail(await admin.post("/api/admin/tasks/done/fail", {}), 400)  # terminal tasks never change
        fail(await admin.post("/api/admin/tasks/done/repoll", {}), 400)
        data(await admin.post("/api/admin/tasks/running/repoll", {}))
        async with db.read() as session:
            assert (await get_by_mj_id(session, "running")).next_poll_at < 10**15
        result = data(await admin.post("/api/admin/tasks/running/fail", {"reason": "stuck upstream"}))
        assert result["refunded"] is True
        async with db.read() as session:
            task = await get_by_mj_id(session, "running")
        assert task.status == "FAILURE" and "stuck upstream" in task.fail_reason and task.next_poll_at is None
        balance, ledger = await _money(db, owner["id"])
        assert balance == ledger == 900
        actions = [e["action"] for e in data(await admin.get("/api/admin/audit"))["items"]]
        assert actions == ["force_fail", "repoll"]


@sqlite_only
async def test_only_admins_and_only_with_csrf(app, db):
    http, admin, owner = await _setup(app, db)
    async with aclosing(http):
        user_http = new_client(app)
        async with aclosing(user_http):
            user = await login(user_http, db, "pleb")
            fail(await user.post("/api/admin/tasks/done/refund", {}), 403)
        resp = await http.post("/api/admin/tasks/done/refund", json={})  # no CSRF token
        fail(resp, 403)
        balance, _ = await _money(db, owner["id"])
        assert balance == 700
