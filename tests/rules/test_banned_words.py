"""Moderation before money: the banned-word matcher, refusals in each face's terms, hits and blocks."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from mjgate.app import create_app
from mjgate.models import LedgerEntry, ModerationHit, Task
from mjgate.moderation.words import BannedWords
from mjgate.tasks import repository, transitions
from tests.console.helpers import data, fail, login
from tests.fixtures.app import gateway_settings
from tests.fixtures.live import _env, cli
from tests.fixtures.relay import PLENTY, add_simulator_channel, make_relay



def test_matching_ignores_case_and_punctuation_but_not_word_edges():
    words = BannedWords([("gore", "bloodbath"), ("adult", "bad word"), ("cjk", "禁止词")])
    assert words.find("a BLOOD-BATH at dawn").word == "bloodbath"
    assert words.find("B.l.o.o.d bath!").group == "gore"
    assert words.find("some Bad, Word here").word == "bad word"
    assert words.find("ＢＡＤ ＷＯＲＤ").word == "bad word"  # full-width letters are letters
    assert words.find("这是禁止词吗").word == "禁止词"  # no spaces in Chinese: matched anywhere
    assert words.find("bloodbaths", "badword") is not None  # "badword": the letters in order
    assert words.find("a bloodbathing", "abad words") is None  # inside longer words: not the word
    assert words.find("", None, "a calm lake") is None
    assert len(BannedWords([("a", "Bad Word"), ("b", "bad-word")])) == 1  # the same letters are one entry


@pytest.fixture
async def strict_app(db, db_url, tmp_path):
    """A gateway that blocks after 2 hits, for 10 minutes the first time."""
    application = create_app(gateway_settings(db_url, tmp_path, moderation_hits_per_day=2,
                                              moderation_block_minutes=10))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def strict(strict_app):
    transport = httpx.ASGITransport(app=strict_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http


async def _hits(db, user_id: int) -> list[tuple[str, str]]:
    async with db.read() as session:
        rows = await session.execute(select(ModerationHit.source, ModerationHit.word)
                                     .where(ModerationHit.user_id == user_id).order_by(ModerationHit.id))
        return [tuple(r) for r in rows]


async def _tasks(db, user_id: int) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Task).where(Task.user_id == user_id)))


async def test_banned_word_refused_before_any_charge_then_block_and_unblock(strict, db, simulator_session):
    admin_http = httpx.AsyncClient(transport=strict._transport, base_url="http://gateway.test")
    admin = await login(admin_http, db, "root", role="admin")
    added = data(await admin.post("/api/admin/banned-words", {"group": "gore", "words": ["Bloodbath", "gory scene"]}),
                 201)
    assert {w["word"] for w in added["items"]} == {"Bloodbath", "gory scene"}
    relay = await make_relay(strict, db)
    await add_simulator_channel(db, simulator_session)

    answer = await relay.post("/mj/submit/imagine", {"prompt": "a B.L.O.O.D-bath in the rain"})
    assert answer["code"] == 24 and "Bloodbath" in answer["description"] and answer["result"] is None
    assert answer["properties"]["bannedWord"] == "Bloodbath"
    ace = await strict.post("/midjourney/imagine", json={"prompt": "a GORY scene"}, headers=relay.headers)
    assert ace.status_code == 400 and ace.json()["error"]["code"] == "bad_request"
    assert "gory scene" in ace.json()["error"]["message"]
    # Nothing was charged and no task was made; each hit was counted.
    money = await relay.balances()
    assert money["used"] == 0 and money["quota"] == money["ledger"] == PLENTY
    assert await _tasks(db, relay.user["id"]) == 0
    assert await _hits(db, relay.user["id"]) == [("gateway", "Bloodbath"), ("gateway", "gory scene")]

    # The second hit blocked the user: even a clean prompt is refused, and admins see the block.
    blocked = await relay.post("/mj/submit/imagine", {"prompt": "a calm lake"})
    assert blocked["code"] == 4 and "may not submit until" in blocked["description"]
    blocks = data(await admin.get("/api/admin/moderation/blocks"))["items"]
    assert [(b["username"], b["hits"], b["minutes"], b["active"]) for b in blocks] == [("alice", 2, 10, True)]
    hits = data(await admin.get(f"/api/admin/moderation/hits?user_id={relay.user['id']}"))["items"]
    assert [h["word"] for h in hits] == ["gory scene", "Bloodbath"]
    assert data(await admin.post(f"/api/admin/users/{relay.user['id']}/unblock"))["lifted"] == 1
    assert (await relay.post("/mj/submit/imagine", {"prompt": "a calm lake"}))["code"] == 1
    fail(await admin.post(f"/api/admin/users/{relay.user['id']}/unblock"), 404)

    # Two more hits: blocked again, twice as long.
    for _ in range(2):
        assert (await relay.post("/mj/submit/imagine", {"prompt": "bloodbath"}))["code"] == 24
    blocks = data(await admin.get("/api/admin/moderation/blocks"))["items"]
    assert [(b["minutes"], b["active"]) for b in blocks] == [(20, True)]
    assert len(data(await admin.get("/api/admin/moderation/blocks?all=true"))["items"]) == 2

    # Removing the word lets it through (after the block is lifted).
    assert data(await admin.post("/api/admin/banned-words/remove", {"words": ["Bloodbath"], "group": "gore"})) \
        == {"removed": 1}
    assert [w["word"] for w in data(await admin.get("/api/admin/banned-words"))["items"]] == ["gory scene"]
    data(await admin.post(f"/api/admin/users/{relay.user['id']}/unblock"))
    assert (await relay.post("/mj/submit/imagine", {"prompt": "bloodbath"}))["code"] == 1
    await admin_http.aclose()


async def test_the_upstream_refusal_is_released_and_counted(strict, db, simulator_session):
    relay = await make_relay(strict, db)
    await add_simulator_channel(db, simulator_session)
    # The simulator's own moderation answers code 24 for this word.
    answer = await relay.post("/mj/submit/imagine", {"prompt": "something nsfw-banned"})
    assert answer["code"] == 24
    money = await relay.balances()
    assert money["used"] == 0 and money["quota"] == money["ledger"]
    assert [source for source, _ in await _hits(db, relay.user["id"])] == ["upstream"]

    # A FAILURE whose reason says the upstream's moderator refused it: refunded and counted.
    simulator_session.configure(step_seconds=30)
    mj_id = (await relay.post("/mj/submit/imagine", {"prompt": "a quiet harbour"}))["result"]
    async with db.transaction() as conn:
        task = await repository.get_by_mj_id(conn, mj_id)
        change = await transitions.apply_values(conn, task, {"status": "FAILURE",
                                                             "fail_reason": "Banned prompt detected by the moderator"})
    assert change.refunded
    hits = await _hits(db, relay.user["id"])
    assert [source for source, _ in hits] == ["upstream", "upstream"] and "Banned prompt" in hits[-1][1]
    async with db.read() as session:
        refunds = await session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.kind == "refund", LedgerEntry.user_id == relay.user["id"]))
    assert refunds == 1
    # Two hits: blocked.
    assert "may not submit" in (await relay.post("/mj/submit/imagine", {"prompt": "a boat"}))["description"]


async def test_console_submit_of_a_banned_word_is_400(client, db, simulator_session):
    admin = await login(client, db, "root", role="admin")
    data(await admin.post("/api/admin/banned-words", {"words": ["forbidden thing"]}), 201)
    user_http = httpx.AsyncClient(transport=client._transport, base_url="http://gateway.test")
    user = await login(user_http, db, "eve", quota=PLENTY)
    await add_simulator_channel(db, simulator_session)
    message = fail(await user.post("/api/console/submit/imagine", {"prompt": "a FORBIDDEN-thing"}), 400)
    assert "forbidden thing" in message
    await user_http.aclose()


def test_cli_edits_the_list_and_lifts_blocks(tmp_path):
    env = _env(f"sqlite+aiosqlite:///{tmp_path}/cli.db", tmp_path)
    cli(env, "user", "create", "mallory")
    added = cli(env, "banned-word", "add", "gore", "blood bath", "--group", "violence")
    assert [(w["group"], w["word"]) for w in added] == [("violence", "blood bath"), ("violence", "gore")]
    cli(env, "banned-word", "add", "nude")
    assert [w["word"] for w in cli(env, "banned-word", "list", "--group", "violence")] == ["blood bath", "gore"]
    assert cli(env, "banned-word", "remove", "gore")["removed"] == 1
    assert [w["word"] for w in cli(env, "banned-word", "list")] == ["nude", "blood bath"]
    assert cli(env, "user", "blocks") == []


