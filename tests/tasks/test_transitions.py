"""tasks/transitions.py on real databases: the one compare-and-set every task change goes through."""

from __future__ import annotations

from sqlalchemy import select

from mjgate.billing.ledger import ledger_balance, record_charge, reserve
from mjgate.db.unit_of_work import CommitHooks
from mjgate.models import LedgerEntry, User
from mjgate.tasks import repository, transitions
from tests.factories import make_user


async def _charged_task(db, user_id: int, **fields):
    async with db.transaction() as conn:
        await reserve(conn, user_id, None, 100)
        task = await repository.insert(conn, mj_id=fields.pop("mj_id", "t1"), user_id=user_id, action="IMAGINE",
                                       mode="fast", bot_type="MID_JOURNEY", prompt="p", prompt_en="p", state="",
                                       properties={}, quota=100, request={}, notify_hook=fields.pop("hook", ""),
                                       dialect="mjproxy", trace_id=None, public_base="", submit_time=1_000,
                                       **fields)
        await record_charge(conn, task)
    return task


def _recording(db):
    staged, announced = [], []

    async def stage(conn, task):
        staged.append((task.mj_id, task.status, task.progress))

    async def announce(tasks):
        announced.extend(t.mj_id for t in tasks)

    db.hooks = CommitHooks(stage=stage, announce=announce)
    return staged, announced


async def test_a_change_is_written_staged_and_announced_once_committed(db):
    user = await make_user(db, quota=1_000)
    task = await _charged_task(db, user["id"], upstream_id="u1", hook="https://example.com/h")
    staged, announced = _recording(db)
    async with db.transaction() as conn:
        change = await transitions.apply_snapshot(conn, task, {"id": "u1", "status": "IN_PROGRESS", "progress": "40%"})
        assert change.changed and announced == []  # nothing is announced before the commit
    assert staged == [("t1", "IN_PROGRESS", "40%")] and announced == ["t1"]
    async with db.reading() as conn:
        stored = await repository.get(conn, task.id)
    assert (stored.status, stored.progress) == ("IN_PROGRESS", "40%") and stored.start_time


async def test_a_properties_only_change_sends_no_callback(db):
    user = await make_user(db, quota=1_000)
    task = await _charged_task(db, user["id"], upstream_id="u1", hook="https://example.com/h")
    staged, announced = _recording(db)
    async with db.transaction() as conn:
        await transitions.apply_snapshot(conn, task, {"id": "u1", "properties": {"messageId": "m"}})
    assert staged == [] and announced == ["t1"]


async def test_a_stale_writer_loses_and_a_terminal_task_never_moves(db):
    user = await make_user(db, quota=1_000)
    task = await _charged_task(db, user["id"], upstream_id="u1")
    _recording(db)
    async with db.reading() as conn:
        stale = await repository.get(conn, task.id)
    async with db.transaction() as conn:
        assert (await transitions.apply_snapshot(conn, task, {"id": "u1", "status": "SUCCESS"})).changed
    async with db.transaction() as conn:  # read before the SUCCESS: its compare-and-set fails
        assert not (await transitions.fail(conn, stale, "too late")).changed
    async with db.transaction() as conn:
        assert not (await transitions.fail(conn, task, "after success")).changed  # terminal: untouched
    async with db.reading() as conn:
        assert (await repository.get(conn, task.id)).status == "SUCCESS"


async def test_failure_refunds_exactly_once(db):
    user = await make_user(db, quota=1_000)
    task = await _charged_task(db, user["id"], upstream_id="u1")
    _recording(db)
    async with db.reading() as conn:
        copy = await repository.get(conn, task.id)
    async with db.transaction() as conn:
        first = await transitions.fail(conn, task, "timed out")
    async with db.transaction() as conn:
        second = await transitions.apply_snapshot(conn, copy, {"id": "u1", "status": "FAILURE", "failReason": "x"})
    assert first.refunded and not second.changed
    async with db.read() as session:
        kinds = list(await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.task_id == task.id)))
        balance = (await session.get(User, user["id"])).quota
        assert sorted(kinds) == ["charge", "refund"] and balance == await ledger_balance(session, user["id"]) == 1_000


async def test_quiet_polls_back_off_in_one_statement_per_step_and_release_the_lease(db):
    user = await make_user(db, quota=10_000)
    tasks = [await _charged_task(db, user["id"], mj_id=f"q{i}", upstream_id=f"u{i}", lease_owner="me",
                                 lease_until=10**15, poll_attempts=i) for i in range(3)]
    async with db.transaction() as conn:
        await transitions.quiet_polls(conn, tasks, lease_owner="me")
    async with db.reading() as conn:
        after = [await repository.get(conn, t.id) for t in tasks]
    assert [t.poll_attempts for t in after] == [1, 2, 3]
    assert all(t.lease_owner is None and t.upstream_missing == 0 for t in after)
    delays = [t.next_poll_at - t.updated_at for t in after]
    assert delays == [transitions.next_poll_delay_ms(False, n) for n in (1, 2, 3)]
    async with db.transaction() as conn:  # someone else's lease is not touched
        await transitions.quiet_polls(conn, after, lease_owner="other")
    async with db.reading() as conn:
        assert [(await repository.get(conn, t.id)).poll_attempts for t in tasks] == [1, 2, 3]
