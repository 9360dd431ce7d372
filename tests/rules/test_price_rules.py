"""Per-parameter prices: rules over action, mode and parameters; the task keeps the rule it was charged by."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mjgate.billing.price_rules import best_rule, parameters_of
from mjgate.billing.pricing import QUOTA_PER_USD, load_tables, quote_task
from mjgate.models import LedgerEntry
from mjgate.tasks import repository, transitions
from tests.console.helpers import data, fail, login
from tests.fixtures.relay import add_simulator_channel, make_relay


def test_parameters_read_from_prompts_buttons_and_video_requests():
    assert parameters_of("IMAGINE", {}, "a cat --ar 3:2 --v 6.1 --q 2", None) == {"version": "6.1", "mask": "no"}
    assert parameters_of("IMAGINE", {}, "a cat --niji 6", None)["niji"] == "6"
    assert parameters_of("IMAGINE", {}, "a cat", None, "NIJI_JOURNEY")["niji"] == "default"
    upscale = {cid: parameters_of("UPSCALE", {}, "x", cid)["upscale"] for cid in (
        "MJ::JOB::upsample::1::h", "MJ::JOB::upsample_v6_2x_subtle::1::h::SOLO",
        "MJ::JOB::upsample_v6_2x_creative::1::h::SOLO", "MJ::JOB::upsample_v5_2x::1::h::SOLO",
        "MJ::JOB::upsample_v5_4x::1::h::SOLO")}
    assert list(upscale.values()) == ["standard", "subtle_2x", "creative_2x", "2x", "4x"]
    video = parameters_of("VIDEO", {"videoType": "vid_1.1_i2v_720", "motion": "High", "action": "extend"}, "", None)
    assert video == {"resolution": "720p", "motion": "high", "length": "extend", "mask": "no"}
    assert parameters_of("EDITS", {"maskBase64": "x"}, "p", None)["mask"] == "yes"


def test_the_most_specific_rule_wins_unless_a_priority_says_otherwise():
    rules = {"any-v7": {"action": "*", "match": {"version": "7"}, "price_usd": 1},
             "imagine-v7": {"action": "IMAGINE", "match": {"version": "7"}, "price_usd": 2},
             "imagine-v7-relax": {"action": "IMAGINE", "mode": "relax", "match": {"version": "7"}, "price_usd": 3},
             "niji-any": {"action": "IMAGINE", "match": {"niji": "*"}, "ratio": 2}}
    params = {"version": "7"}
    assert best_rule(rules, "IMAGINE", "fast", params)[0] == "imagine-v7"
    assert best_rule(rules, "IMAGINE", "relax", params)[0] == "imagine-v7-relax"
    assert best_rule(rules, "BLEND", "fast", params)[0] == "any-v7"
    assert best_rule(rules, "IMAGINE", "fast", {"niji": "6"})[0] == "niji-any"
    assert best_rule(rules, "IMAGINE", "fast", {"version": "6"}) is None
    rules["any-v7"]["priority"] = 5
    assert best_rule(rules, "IMAGINE", "relax", params)[0] == "any-v7"


async def test_a_rule_prices_the_task_and_its_later_edit_never_changes_the_refund(client, db, simulator_session):
    admin = await login(client, db, "root", role="admin")
    rule = {"action": "IMAGINE", "match": {"version": "7"}, "price_usd": 0.3}
    answer = data(await admin.put("/api/admin/price-rules/imagine-v7", rule))
    assert answer["rules"]["imagine-v7"] == {**rule, "priority": 0, "match": {"version": "7"}}
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    simulator_session.configure(step_seconds=30)  # the tasks stay running until this test fails one

    ruled = (await relay.post("/mj-relax/mj/submit/imagine", {"prompt": "a cat --v 7"}))["result"]
    plain = (await relay.post("/mj/submit/imagine", {"prompt": "a cat --v 6"}))["result"]
    async with db.reading() as conn:
        ruled_task = await repository.get_by_mj_id(conn, ruled)
        plain_task = await repository.get_by_mj_id(conn, plain)
    charged = int(0.3 * QUOTA_PER_USD * 0.5)  # the rule's price times the relax ratio
    assert ruled_task.quota == charged and plain_task.quota == int(0.1 * QUOTA_PER_USD)
    assert ruled_task.price_rule["name"] == "imagine-v7" and ruled_task.price_rule["quota"] == charged
    assert ruled_task.price_rule["rule"]["price_usd"] == 0.3 and plain_task.price_rule is None
    async with db.read() as session:
        memo = await session.scalar(select(LedgerEntry.memo).where(LedgerEntry.task_id == ruled_task.id,
                                                                   LedgerEntry.kind == "charge"))
    assert memo == "price rule imagine-v7"

    # The rule is made dearer, then the task fails: the refund is what it was charged.
    data(await admin.put("/api/admin/price-rules/imagine-v7", {**rule, "price_usd": 0.9}))
    async with db.read() as session:
        tables = await load_tables(session)
    assert quote_task(tables, "IMAGINE", "default", "relax", params={}, prompt="x --v 7")[0] == int(0.9 * QUOTA_PER_USD * 0.5)
    async with db.transaction() as conn:
        task = await repository.get(conn, ruled_task.id)
        assert (await transitions.apply_values(conn, task, {"status": "FAILURE", "fail_reason": "upstream broke"})).refunded
    async with db.read() as session:
        refund = await session.scalar(select(LedgerEntry.amount).where(LedgerEntry.task_id == ruled_task.id,
                                                                       LedgerEntry.kind == "refund"))
    assert refund == charged
    async with db.reading() as conn:
        assert (await repository.get(conn, ruled_task.id)).price_rule["rule"]["price_usd"] == 0.3
    money = await relay.balances()
    assert money["used"] == plain_task.quota and money["quota"] == money["ledger"]


async def test_bad_rules_are_400_and_rules_can_be_removed(client, db):
    admin = await login(client, db, "root", role="admin")
    assert "price_usd or ratio" in fail(await admin.put("/api/admin/price-rules/r1", {"action": "IMAGINE"}), 400)
    assert "action" in fail(await admin.put("/api/admin/price-rules/r1", {"action": "PAINT", "ratio": 2}), 400)
    assert "match" in fail(await admin.put("/api/admin/price-rules/r1",
                                           {"action": "IMAGINE", "ratio": 2, "match": {"colour": "red"}}), 400)
    fail(await admin.put("/api/admin/price-rules/bad%20name", {"action": "IMAGINE", "ratio": 2}), 400)
    data(await admin.put("/api/admin/price-rules/upscale-creative",
                         {"action": "UPSCALE", "match": {"upscale": "creative_2x"}, "ratio": 4}))
    listed = data(await admin.get("/api/admin/price-rules"))
    assert set(listed["rules"]) == {"upscale-creative"} and "upscale" in listed["parameters"]
    assert data(await admin.post("/api/admin/price-rules/upscale-creative/remove", {}))["rules"] == {}
    fail(await admin.post("/api/admin/price-rules/upscale-creative/remove", {}), 404)


async def test_concurrent_rule_edits_lose_none(db):
    """Twenty rules added at once, each in its own transaction: all twenty are kept (the rules are one
    option row, edited under a lock on it)."""
    import asyncio

    from mjgate.billing import pricing

    await asyncio.gather(*(pricing.set_rule(db, f"r{n}", {"action": "IMAGINE", "match": {"version": str(n)}, "ratio": 2})
                           for n in range(20)))
    async with db.read() as session:
        rules = (await load_tables(session))[pricing.OPTION_PRICE_RULES]
    assert sorted(rules) == sorted(f"r{n}" for n in range(20))
    await asyncio.gather(*(pricing.remove_rule(db, f"r{n}") for n in range(0, 20, 2)))
    async with db.read() as session:
        assert sorted((await load_tables(session))[pricing.OPTION_PRICE_RULES]) == sorted(f"r{n}" for n in range(1, 20, 2))

