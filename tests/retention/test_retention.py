"""MJGATE_TASK_RETENTION_DAYS on every database: old finished tasks and their stored images go in
bounded batches; the ledger stays whole (balance equals ledger), newer and unfinished tasks stay."""

from __future__ import annotations

from sqlalchemy import func, select

from mjgate.billing.ledger import credit, give_back, ledger_balance, record_charge, reserve
from mjgate.clock import now_ms
from mjgate.images.s3 import S3Client, S3ImageStore
from mjgate.images.store import LocalImageStore
from mjgate.models import AuditEntry, LedgerEntry, Task, User, WebhookDelivery
from mjgate.retention import DAY_MS, Retention
from tests.factories import insert_tasks, make_user, task_row
from tests.fixtures.live import free_port

PRICE = 100


async def _world(db, tmp_path):
    """A user with charged tasks of every age and state, images on disk, outbox and audit rows."""
    user = await make_user(db, "keeper")
    now = now_ms()
    old = now - 40 * DAY_MS
    recent = now - 5 * DAY_MS
    store = LocalImageStore(tmp_path / "images", 10 << 20)

    def image(mj_id: str) -> str:
        key = f"{mj_id[-2:]}/{mj_id}.png"
        (store.root / key).parent.mkdir(parents=True, exist_ok=True)
        (store.root / key).write_bytes(b"\x89PNG " + mj_id.encode())
        return key

    rows = {
        "old_success": task_row(user["id"], submit_time=old, mj_id="1000000000000001", quota=PRICE),
        "old_failure": task_row(user["id"], submit_time=old, mj_id="1000000000000002", quota=PRICE,
                                status="FAILURE", progress="0%"),
        "old_cancel": task_row(user["id"], submit_time=old, mj_id="1000000000000003", status="CANCEL",
                               finish_time=None, updated_at=old),
        "old_running": task_row(user["id"], submit_time=old, mj_id="1000000000000004", status="IN_PROGRESS",
                                finish_time=None, next_poll_at=now),
        "recent_success": task_row(user["id"], submit_time=recent, mj_id="1000000000000005", quota=PRICE),
        "old_parent": task_row(user["id"], submit_time=old, mj_id="1000000000000006"),
    }
    rows["old_success"]["stored_image"] = image("1000000000000001")
    rows["recent_success"]["stored_image"] = image("1000000000000005")
    for n in (1, 2, 3, 4):  # split_images parts of the old grid, named as images/own.py names them
        (store.root / f"01/1000000000000001-{n}.png").write_bytes(b"\x89PNG part")
    await insert_tasks(db, list(rows.values()))
    async with db.write() as session:
        ids = {name: (await session.scalar(select(Task.id).where(Task.mj_id == row["mj_id"])))
               for name, row in rows.items()}
        child = task_row(user["id"], submit_time=recent, mj_id="1000000000000007", action="UPSCALE",
                         parent_id=ids["old_parent"])
        session.add(Task(**child))
        await credit(session, user["id"], 10_000, memo="initial quota")
        for name in ("old_success", "old_failure", "recent_success"):
            task = await session.get(Task, ids[name])
            await reserve(session, user["id"], None, PRICE)
            await record_charge(session, task)
        assert await give_back(session, await session.get(Task, ids["old_failure"]), kind="refund", memo="failed")
        session.add(WebhookDelivery(task_id=ids["old_success"], url="https://example.com/hook", payload={},
                                    status="delivered", attempts=1, next_attempt_at=old, created_at=old))
        session.add(WebhookDelivery(task_id=ids["recent_success"], url="https://example.com/hook", payload={},
                                    status="delivered", attempts=1, next_attempt_at=recent, created_at=recent))
        session.add(AuditEntry(actor_user_id=user["id"], action="refund", target="task:1000000000000002",
                               detail={}, created_at=old))
    return user, ids, store


async def _ledger(db, user_id):
    async with db.read() as session:
        rows = list(await session.scalars(select(LedgerEntry).where(LedgerEntry.user_id == user_id)
                                          .order_by(LedgerEntry.id)))
        balance = (await session.get(User, user_id)).quota
        return rows, balance, await ledger_balance(session, user_id)


async def test_old_finished_tasks_go_in_bounded_batches_and_the_ledger_stays(db, tmp_path):
    user, ids, store = await _world(db, tmp_path)
    before, balance_before, ledger_before = await _ledger(db, user["id"])
    assert balance_before == ledger_before == 10_000 - 2 * PRICE

    async with db.read() as session:
        counted_before = (await session.get(User, user["id"])).task_count
        rows_before = await session.scalar(select(func.count()).select_from(Task).where(Task.user_id == user["id"]))

    retention = Retention(db, 30, store, batch_size=2, max_batches=1)
    first = await retention.run_once()
    assert first.removed == 2 and first.backlog  # bounded: one batch of two, more to do
    while (result := await retention.run_once()).removed:
        assert result.removed <= 2
    assert not result.backlog

    async with db.read() as session:
        left = {t.mj_id: t for t in await session.scalars(select(Task))}
        outbox = list(await session.scalars(select(WebhookDelivery.task_id)))
        audits = await session.scalar(select(func.count()).select_from(AuditEntry))
    assert set(left) == {"1000000000000004", "1000000000000005", "1000000000000007"}  # running, recent, child
    assert left["1000000000000007"].parent_id is None  # its parent is gone, the child is not
    assert outbox == [ids["recent_success"]]
    assert audits == 1  # admin actions outlive the tasks they touched
    async with db.read() as session:
        counted_after = (await session.get(User, user["id"])).task_count
    # users.task_count drops by exactly the rows removed (the listing total it serves stays right).
    assert counted_before - counted_after == rows_before - len([t for t in left.values() if t.user_id == user["id"]])

    after, balance_after, ledger_after = await _ledger(db, user["id"])
    assert [(e.id, e.kind, e.amount) for e in after] == [(e.id, e.kind, e.amount) for e in before]  # every row kept
    assert balance_after == ledger_after == balance_before  # balance still equals the ledger
    by_id = {e.id: e for e in after}
    for entry in before:
        kept = by_id[entry.id]
        if entry.task_id in (ids["old_success"], ids["old_failure"]):
            mj_id = "1000000000000001" if entry.task_id == ids["old_success"] else "1000000000000002"
            assert kept.task_id is None and f"(task {mj_id}, removed by retention)" in kept.memo
        else:
            assert kept.task_id == entry.task_id and kept.memo == entry.memo
    refund = next(e for e in after if e.kind == "refund")
    assert refund.memo == "failed (task 1000000000000002, removed by retention)"

    assert not (store.root / "01/1000000000000001.png").exists()  # the old task's image is gone
    assert not list(store.root.glob("01/1000000000000001-*.png"))  # with its split parts
    assert (store.root / "05/1000000000000005.png").exists()  # the recent one's is not


async def test_a_task_whose_image_cannot_be_deleted_stays(db, tmp_path):
    user = await make_user(db, "stuck")
    old = now_ms() - 40 * DAY_MS
    await insert_tasks(db, [task_row(user["id"], submit_time=old, mj_id="2000000000000001",
                                     stored_image="images/01/2000000000000001.png"),
                            task_row(user["id"], submit_time=old, mj_id="2000000000000002")])
    # A real S3 client aimed at a port where nothing listens: every delete fails.
    unreachable = S3ImageStore(S3Client(bucket="b", region="us-east-1", endpoint_url=f"http://127.0.0.1:{free_port()}",
                                        access_key_id="k", secret_access_key="s", max_attempts=1), "images/", 1 << 20)
    try:
        result = await Retention(db, 30, unreachable).run_once()
    finally:
        await unreachable.close()
    assert result.removed == 1 and result.images_failed == 1
    async with db.read() as session:
        assert list(await session.scalars(select(Task.mj_id))) == ["2000000000000001"]


async def test_off_by_default_and_never_below_one_day(tmp_path):
    from mjgate.config import Settings

    assert Settings(data_dir=tmp_path).task_retention_days == 0
    import pytest

    with pytest.raises(ValueError):
        Retention(None, 0)


async def test_the_background_workers_run_it_with_the_image_store(sqlite_url, tmp_path):
    import asyncio

    from mjgate.app import create_app
    from tests.fixtures.app import gateway_settings

    app = create_app(gateway_settings(sqlite_url, tmp_path, task_retention_days=30)
                     .model_copy(update={"poller_enabled": True}))
    async with app.router.lifespan_context(app):
        retention = app.state.workers.retention
        assert retention is not None and retention.days == 30
        assert isinstance(retention.image_store, LocalImageStore)
        assert "mjgate-retention" in {t.get_name() for t in asyncio.all_tasks()}
    off = create_app(gateway_settings(sqlite_url, tmp_path / "off").model_copy(update={"poller_enabled": True}))
    async with off.router.lifespan_context(off):
        assert off.state.workers.retention is None
