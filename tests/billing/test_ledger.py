"""billing/ledger.py on real databases: reservations never overdraw, give-backs happen once."""

from __future__ import annotations

import asyncio

import pytest

from mjgate.billing.ledger import credit, give_back, ledger_balance, record_charge, reserve
from mjgate.errors import BadRequest, QuotaExhausted
from mjgate.models import ApiKey, User
from mjgate.tasks import repository
from tests.factories import make_key, make_user


async def _balances(db, user_id, key_id=None):
    async with db.read() as session:
        user = await session.get(User, user_id)
        key = await session.get(ApiKey, key_id) if key_id else None
        return user.quota, user.used_quota, await ledger_balance(session, user_id), key


async def test_concurrent_reservations_never_overdraw(db):
    user = await make_user(db, quota=1_000)

    async def one(i: int) -> bool:
        try:
            async with db.transaction() as conn:
                await reserve(conn, user["id"], None, 300)
                task = await repository.insert(conn, mj_id=f"c{i}", user_id=user["id"], action="IMAGINE", mode="fast",
                                               bot_type="MID_JOURNEY", prompt="", prompt_en="", state="", properties={},
                                               quota=300, request={}, notify_hook="", dialect="mjproxy",
                                               trace_id=None, public_base="", submit_time=1)
                await record_charge(conn, task)
            return True
        except QuotaExhausted:
            return False

    results = await asyncio.gather(*(one(i) for i in range(8)))
    quota, used, ledger, _ = await _balances(db, user["id"])
    assert sum(results) == 3 and quota == 100 and used == 900 and ledger == quota


async def test_the_key_limit_is_taken_and_given_back_with_the_balance(db):
    user = await make_user(db, quota=1_000)
    key = await make_key(db, user["id"], quota=250)
    async with db.read() as session:
        key_row = await session.get(ApiKey, key["id"])
    async with db.transaction() as conn:
        await reserve(conn, user["id"], key_row, 200)
        task = await repository.insert(conn, mj_id="k1", user_id=user["id"], token_id=key["id"], action="IMAGINE",
                                       mode="fast", bot_type="MID_JOURNEY", prompt="", prompt_en="", state="",
                                       properties={}, quota=200, request={}, notify_hook="", dialect="mjproxy",
                                       trace_id=None, public_base="", submit_time=1)
        await record_charge(conn, task)
    with pytest.raises(QuotaExhausted, match="key"):
        async with db.transaction() as conn:
            await reserve(conn, user["id"], key_row, 100)  # the balance could, the key cannot
    *_, key_after = await _balances(db, user["id"], key["id"])
    assert (key_after.remain_quota, key_after.used_quota) == (50, 200)
    async with db.transaction() as conn:
        assert await give_back(conn, task, kind="refund", memo="failed")
    async with db.transaction() as conn:
        assert not await give_back(conn, task, kind="refund", memo="again")  # once only
    quota, used, ledger, key_after = await _balances(db, user["id"], key["id"])
    assert (quota, used, ledger) == (1_000, 0, 1_000) and (key_after.remain_quota, key_after.used_quota) == (250, 0)


async def test_credit_rules(db):
    user = await make_user(db, quota=100)
    async with db.write() as session:
        with pytest.raises(BadRequest):
            await credit(session, user["id"], -1, kind="topup")
    async with db.write() as session:
        with pytest.raises(BadRequest, match="negative"):
            await credit(session, user["id"], -101, kind="adjust")
    async with db.write() as session:
        await credit(session, user["id"], -40, kind="adjust", memo="correction")
    quota, _, ledger, _ = await _balances(db, user["id"])
    assert quota == ledger == 60
