"""The midjourney-proxy relay against a real simulator over real HTTP (SPEC §3.2, §4)."""

from __future__ import annotations

import asyncio
import io

import httpx

import pytest
from PIL import Image

from mjgate.billing.pricing import QUOTA_PER_USD
from tests.fixtures.relay import add_simulator_channel, make_relay
from tests.fixtures.simulator import start_simulator_process

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
IMAGINE_PRICE = int(0.1 * QUOTA_PER_USD)
UPSCALE_PRICE = int(0.05 * QUOTA_PER_USD)
PNG_B64 = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def upstream_calls(sim, fragment: str) -> list[dict]:
    return [r for r in sim.requests() if fragment in r["path"]]


@sqlite_only
async def test_imagine_progress_success_and_image(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    answer = await relay.post("/mj/submit/imagine", {"prompt": "a red fox in the snow", "state": "s-1"})
    assert answer["code"] == 1 and answer["description"]
    mj_id = answer["result"]
    assert isinstance(mj_id, str) and len(mj_id) == 16 and mj_id.isdigit()
    task = await relay.wait(mj_id)
    assert task["status"] == "SUCCESS" and task["progress"] == "100%"
    assert task["id"] == mj_id and task["state"] == "s-1" and task["action"] == "IMAGINE"
    assert {s for s, _ in task["_seen"]} >= {"SUCCESS"}
    labels = [b["label"] for b in task["buttons"] if b.get("label")]
    assert {"U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"} <= set(labels)
    assert task["submitTime"] <= task["startTime"] <= task["finishTime"]
    # The image URL is the gateway's own, downloadable with a plain GET and no credentials.
    assert task["imageUrl"].startswith("http://gateway.test/mj/image/" + mj_id)
    assert simulator_session.base_url not in task["imageUrl"]
    image = await client.get(task["imageUrl"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(image.content))
    assert picture.width > 0 and picture.height > 0
    # Charged exactly the imagine price, and the ledger agrees with the balance.
    money = await relay.balances()
    assert money["used"] == IMAGINE_PRICE and money["quota"] == money["ledger"]


@sqlite_only
async def test_image_url_refused_without_valid_signature(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    task = await relay.wait((await relay.post("/mj/submit/imagine", {"prompt": "cat"}))["result"])
    url = task["imageUrl"]
    base = url.split("?")[0]
    assert (await client.get(base)).status_code == 403
    assert (await client.get(url.replace("sig=", "sig=x"))).status_code == 403
    expired = base + "?expires=1000&" + url.split("&sig=")[1].join(["sig=", ""])
    assert (await client.get(expired)).status_code == 403
    # The owner's key works without a signature.
    assert (await client.get(base, headers=relay.headers)).status_code == 200


async def _imagine_done(relay) -> dict:
    answer = await relay.post("/mj/submit/imagine", {"prompt": "a lighthouse at dusk"})
    assert answer["code"] == 1, answer
    return await relay.wait(answer["result"])


def _button(task: dict, label: str) -> str:
    return next(b["customId"] for b in task["buttons"] if b.get("label") == label)


@sqlite_only
@pytest.mark.parametrize("route", ["action", "change", "simple-change"])
async def test_follow_up_goes_to_parent_channel_with_its_own_secret(client, db, route):
    with start_simulator_process(secret="secret-A") as sim_a, start_simulator_process(secret="secret-B") as sim_b:
        relay = await make_relay(client, db)
        ch_a = await add_simulator_channel(db, sim_a, "A", priority=10)
        ch_b = await add_simulator_channel(db, sim_b, "B", priority=0)
        parent = await _imagine_done(relay)
        # Make B the preferred channel: the follow-up must still go to A, with A's secret.
        from mjgate.channels.admin import update_channel
        async with db.write() as session:
            await update_channel(session, ch_a, {"priority": 0})
            await update_channel(session, ch_b, {"priority": 100})
        body = {
            "action": {"taskId": parent["id"], "customId": _button(parent, "U1")},
            "change": {"taskId": parent["id"], "action": "UPSCALE", "index": 1},
            "simple-change": {"content": f"{parent['id']} U1"},
        }[route]
        answer = await relay.post(f"/mj/submit/{route}", body)
        assert answer["code"] == 1, answer
        child = await relay.wait(answer["result"])
        assert child["status"] == "SUCCESS" and child["action"] == "UPSCALE"
        calls = upstream_calls(sim_a, f"/submit/{route}")
        assert len(calls) == 1 and calls[0]["headers"]["mj-api-secret"] == "secret-A"
        upstream_parent_id = upstream_calls(sim_a, "/submit/imagine")[0]
        assert upstream_calls(sim_b, "/submit/") == []
        # The upstream saw its own task id, not the gateway's.
        sent = calls[0]["json"]
        sent_ref = sent.get("taskId") or sent.get("content", "").split()[0]
        assert sent_ref != parent["id"] and upstream_parent_id
        money = await relay.balances()
        assert money["used"] == IMAGINE_PRICE + UPSCALE_PRICE and money["quota"] == money["ledger"]


@sqlite_only
async def test_modal_flow(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    grid = await _imagine_done(relay)
    upscaled = await relay.wait((await relay.post("/mj/submit/action", {"taskId": grid["id"], "customId": _button(grid, "U2")}))["result"])
    inpaint = next(b["customId"] for b in upscaled["buttons"] if b["customId"].startswith("MJ::Inpaint::"))
    answer = await relay.post("/mj/submit/action", {"taskId": upscaled["id"], "customId": inpaint})
    assert answer["code"] == 21, answer  # the client must send the modal
    modal_id = answer["result"]
    assert (await relay.fetch(modal_id))["status"] == "MODAL"
    answer = await relay.post("/mj/submit/modal", {"taskId": modal_id, "prompt": "add a moon", "maskBase64": PNG_B64})
    assert answer["code"] == 1 and answer["result"] == modal_id, answer
    done = await relay.wait(modal_id)
    assert done["status"] == "SUCCESS" and done["action"] == "INPAINT"
    money = await relay.balances()
    # imagine + upscale + (inpaint 0 + modal 0.1, paid with the action)
    assert money["used"] == IMAGINE_PRICE + UPSCALE_PRICE + IMAGINE_PRICE and money["quota"] == money["ledger"]


@sqlite_only
async def test_banned_prompt_charges_nothing(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    before = await relay.balances()
    answer = await relay.post("/mj/submit/imagine", {"prompt": "something nsfw-banned here"})
    assert answer["code"] == 24 and answer["result"] is None
    after = await relay.balances()
    assert after["quota"] == before["quota"] and after["used"] == before["used"] == 0
    assert after["ledger"] == after["quota"]


@sqlite_only
async def test_queue_full_on_a_is_accepted_on_b(client, db):
    with start_simulator_process(secret="A", core_size=0, queue_size=0) as sim_a, \
            start_simulator_process(secret="B") as sim_b:
        relay = await make_relay(client, db)
        await add_simulator_channel(db, sim_a, "A", priority=10)
        ch_b = await add_simulator_channel(db, sim_b, "B", priority=0)
        answer = await relay.post("/mj/submit/imagine", {"prompt": "a harbour"})
        assert answer["code"] == 1, answer
        assert len(upstream_calls(sim_a, "/submit/imagine")) == 1  # refused there with 23
        assert len(upstream_calls(sim_b, "/submit/imagine")) == 1
        task = await relay.wait(answer["result"])
        assert task["status"] == "SUCCESS"
        from mjgate.tasks.repository import get_by_mj_id
        async with db.read() as session:
            assert (await get_by_mj_id(session, answer["result"])).channel_id == ch_b
        assert (await relay.balances())["used"] == IMAGINE_PRICE


@sqlite_only
async def test_unreachable_channel_fails_over(client, db, app, simulator_session):
    from tests.factories import make_channel
    relay = await make_relay(client, db)
    await make_channel(db, "dead", "http://127.0.0.1:9", "x", priority=10)
    await add_simulator_channel(db, simulator_session, priority=0)
    answer = await relay.post("/mj/submit/imagine", {"prompt": "a bridge"})
    assert answer["code"] == 1
    assert (await relay.wait(answer["result"]))["status"] == "SUCCESS"
    # Both outcomes reach the channels' health once the buffered counters are flushed.
    from sqlalchemy import select

    from mjgate.models import Channel
    await app.state.tasks.health.flush()
    async with db.read() as session:
        dead, alive = list(await session.scalars(select(Channel).order_by(Channel.id)))
    assert (dead.failure_count, dead.consecutive_failures, dead.success_count) == (1, 1, 0) and dead.last_error
    assert (alive.success_count, alive.failure_count) == (1, 0) and alive.last_ok_at


@sqlite_only
async def test_every_channel_down_releases_the_reservation(client, db):
    from tests.factories import make_channel
    relay = await make_relay(client, db)
    await make_channel(db, "dead", "http://127.0.0.1:9", "x")
    answer = await relay.post("/mj/submit/imagine", {"prompt": "a bridge"})
    assert answer["code"] == 9 and answer["result"] is None
    money = await relay.balances()
    assert money["used"] == 0 and money["quota"] == money["ledger"]


@sqlite_only
async def test_queued_answer_is_code_1_with_position(client, db):
    with start_simulator_process(secret="Q", core_size=1, queue_size=5, step_seconds=0.5) as sim:
        relay = await make_relay(client, db)
        await add_simulator_channel(db, sim)
        first = await relay.post("/mj/submit/imagine", {"prompt": "one"})
        second = await relay.post("/mj/submit/imagine", {"prompt": "two"})
        assert first["code"] == 1 and second["code"] == 1
        assert second["result"] and second["description"]
        from mjgate.tasks.repository import get_by_mj_id
        async with db.read() as session:
            assert (await get_by_mj_id(session, second["result"])).code == 22  # the true code is kept


@sqlite_only
@pytest.mark.parametrize("mode", ["fast", "relax", "turbo"])
async def test_mode_prefix_routes_and_prices(client, db, simulator_session, mode):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    answer = await relay.post(f"/mj-{mode}/mj/submit/imagine", {"prompt": "a fox"})
    assert answer["code"] == 1
    call = upstream_calls(simulator_session, "/submit/imagine")[0]
    assert call["path"].startswith(f"/mj-{mode}/mj/")
    ratio = {"fast": 1, "relax": 0.5, "turbo": 2}[mode]
    assert (await relay.balances())["used"] == int(IMAGINE_PRICE * ratio)
    task = await relay.fetch(answer["result"])
    assert task["mode"] == mode.upper()


@sqlite_only
async def test_mode_without_channel_is_refused_unpaid(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session, modes=["fast"])
    answer = await relay.post("/mj-turbo/mj/submit/imagine", {"prompt": "a fox"})
    assert answer["code"] == 3 and "turbo" in answer["description"]
    assert (await relay.balances())["used"] == 0


@sqlite_only
async def test_describe_blend_shorten_upload_swap(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    describe = await relay.post("/mj/submit/describe", {"base64": PNG_B64})
    assert describe["code"] == 1
    done = await relay.wait(describe["result"])
    assert done["status"] == "SUCCESS" and done["action"] == "DESCRIBE" and done["prompt"].count("\n") >= 3
    blend = await relay.post("/mj/submit/blend", {"base64Array": [PNG_B64, PNG_B64], "dimensions": "SQUARE"})
    assert blend["code"] == 1 and (await relay.wait(blend["result"]))["status"] == "SUCCESS"
    shorten = await relay.post("/mj/submit/shorten", {"prompt": "a very long and winding prompt about foxes"})
    assert shorten["code"] == 1 and (await relay.wait(shorten["result"]))["status"] == "SUCCESS"
    upload = await relay.post("/mj/submit/upload-discord-images", {"base64Array": [PNG_B64]})
    assert upload["code"] == 1 and isinstance(upload["result"], list) and upload["result"]
    swap = await relay.post("/mj/insight-face/swap", {"sourceBase64": PNG_B64, "targetBase64": PNG_B64})
    assert swap["code"] == 1 and (await relay.wait(swap["result"]))["status"] == "SUCCESS"


# ------------------------------------------------------------------ reads and scoping


@sqlite_only
async def test_reads_are_scoped_to_the_caller(client, db, simulator_session):
    alice = await make_relay(client, db, name="alice")
    bob = await make_relay(client, db, name="bob")
    await add_simulator_channel(db, simulator_session)
    mine = (await alice.post("/mj/submit/imagine", {"prompt": "alice's"}))["result"]
    theirs = (await bob.post("/mj/submit/imagine", {"prompt": "bob's"}))["result"]
    resp = await client.get(f"/mj/task/{theirs}/fetch", headers=alice.headers)
    assert resp.status_code == 404 and resp.json()["code"] == 3
    resp = await client.get("/mj/task/nope/fetch", headers=alice.headers)
    assert resp.status_code == 404
    listed = (await client.post("/mj/task/list-by-condition", json={"ids": [mine, theirs, "unknown"]},
                                headers=alice.headers)).json()
    assert [t["id"] for t in listed] == [mine]
    recent = (await client.get("/mj/task/list", headers=alice.headers)).json()
    assert [t["id"] for t in recent] == [mine]
    # A follow-up on someone else's task is "not found", and costs nothing.
    answer = await alice.post("/mj/submit/change", {"taskId": theirs, "action": "UPSCALE", "index": 1})
    assert answer["code"] == 3


@sqlite_only
async def test_image_seed_is_relayed(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    task = await _imagine_done(relay)
    seed = (await client.get(f"/mj/task/{task['id']}/image-seed", headers=relay.headers)).json()
    assert seed["code"] == 1 and str(seed["result"]).isdigit()


# ------------------------------------------------------------------ auth


@sqlite_only
async def test_auth_forms(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    key = relay.key["key"]
    for headers in ({"Authorization": f"Bearer {key}"}, {"mj-api-secret": key},
                    {"Authorization": "midjourney-proxy", "mj-api-secret": key}, {"Authorization": key}):
        resp = await client.post("/mj/submit/imagine", json={"prompt": "x"}, headers=headers)
        assert resp.json()["code"] == 1, (headers, resp.text)
    for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"mj-api-secret": "nope"}):
        resp = await client.post("/mj/submit/imagine", json={"prompt": "x"}, headers=headers)
        assert resp.status_code == 401 and resp.json()["code"] != 1


@sqlite_only
async def test_disabled_and_limited_keys(client, db, simulator_session):
    from mjgate.accounts.keys import set_status
    relay = await make_relay(client, db, key_quota=IMAGINE_PRICE)
    await add_simulator_channel(db, simulator_session)
    assert (await relay.post("/mj/submit/imagine", {"prompt": "one"}))["code"] == 1
    second = await relay.post("/mj/submit/imagine", {"prompt": "two"})
    assert second["code"] == 4 and "key" in second["description"]  # the key's own limit holds
    money = await relay.balances()
    assert money["key_remain"] == 0 and money["key_used"] == IMAGINE_PRICE and money["quota"] == money["ledger"]
    async with db.write() as session:
        await set_status(session, relay.key["id"], "disabled")
    resp = await client.post("/mj/submit/imagine", json={"prompt": "x"}, headers=relay.headers)
    assert resp.status_code == 401


# ------------------------------------------------------------------ money under concurrency


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "mysql"], indirect=True)
async def test_fifty_concurrent_submits_exactly_ten_affordable(client, db, db_url):
    with start_simulator_process(secret="C", core_size=100, queue_size=100) as sim:
        relay = await make_relay(client, db, quota=10 * IMAGINE_PRICE)
        await add_simulator_channel(db, sim)
        answers = await asyncio.gather(*[
            relay.post("/mj/submit/imagine", {"prompt": f"fox {i}"}) for i in range(50)
        ])
        accepted = [a for a in answers if a["code"] == 1]
        refused = [a for a in answers if a["code"] != 1]
        assert len(accepted) == 10, [a["description"] for a in refused][:3]
        assert all("quota" in a["description"] for a in refused)
        assert len(upstream_calls(sim, "/submit/imagine")) == 10  # nothing unpaid went upstream
        money = await relay.balances()
        assert money["quota"] == 0 and money["used"] == 10 * IMAGINE_PRICE
        assert money["ledger"] == money["quota"]


# ------------------------------------------------------------------ bad input


BAD_BODIES = [
    ("/mj/submit/imagine", b"{not json"),
    ("/mj/submit/imagine", b"[1, 2]"),
    ("/mj/submit/imagine", b""),
    ("/mj/submit/imagine", b'{"prompt": ""}'),
    ("/mj/submit/imagine", b'{"prompt": 42.5, "base64Array": "nope"}'),
    ("/mj/submit/imagine", b'{"prompt": "x", "base64Array": ["!!!not base64!!!"]}'),
    ("/mj/submit/imagine", b'{"prompt": "x", "botType": "OTHER"}'),
    ("/mj/submit/imagine", b'{"prompt": "x", "notifyHook": "ftp://x"}'),
    ("/mj/submit/action", b'{"taskId": "1", "customId": "MJ::Unknown::thing"}'),
    ("/mj/submit/action", b'{"taskId": "1"}'),
    ("/mj/submit/change", b'{"taskId": "1", "action": "UPSCALE", "index": 9}'),
    ("/mj/submit/change", b'{"taskId": "1", "action": "DANCE", "index": 1}'),
    ("/mj/submit/simple-change", b'{"content": "just words"}'),
    ("/mj/submit/describe", b'{"base64": "data:text/plain;base64,aGVsbG8="}'),
    ("/mj/submit/blend", b'{"base64Array": ["x"]}'),
    ("/mj/submit/modal", b'{"taskId": null}'),
    ("/mj/insight-face/swap", b'{"sourceBase64": 5}'),
]


@sqlite_only
@pytest.mark.parametrize("path,raw", BAD_BODIES)
async def test_bad_input_is_code_4_never_500(client, db, simulator_session, path, raw):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    resp = await client.post(path, content=raw, headers={**relay.headers, "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["code"] in (3, 4) and body["description"] and body["result"] is None
    assert upstream_calls(simulator_session, "/submit/") == []
    assert (await relay.balances())["used"] == 0


@sqlite_only
async def test_ten_megabyte_prompt(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    body = await relay.post("/mj/submit/imagine", {"prompt": "x" * (10 * 1024 * 1024)})
    assert body["code"] == 4 and "prompt" in body["description"]
    huge = await client.post("/mj/submit/imagine", content=b"x" * (41 * 1024 * 1024), headers=relay.headers)
    assert huge.status_code == 200 and huge.json()["code"] == 4


@sqlite_only
async def test_list_by_condition_bad_bodies(client, db, simulator_session):
    relay = await make_relay(client, db)
    for raw in (b"{bad", b'{"ids": "x"}', b'{"ids": [{"a": 1}]}'):
        resp = await client.post("/mj/task/list-by-condition", content=raw, headers=relay.headers)
        assert resp.status_code == 400 and resp.json()["code"] == 4


@sqlite_only
async def test_submits_are_rate_limited_per_key_but_reads_are_not(db, db_url, tmp_path, simulator_session):
    from mjgate.app import create_app
    from tests.fixtures.app import gateway_settings

    application = create_app(gateway_settings(db_url, tmp_path, rate_limit_per_minute=2))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            relay = await make_relay(http, db)
            await add_simulator_channel(db, simulator_session)
            answers = [await http.post("/mj/submit/imagine", json={"prompt": f"a gull {i}"}, headers=relay.headers)
                       for i in range(3)]
            assert [a.status_code for a in answers] == [200, 200, 429]
            assert answers[0].headers["x-ratelimit-limit"] == "2"
            refused = answers[2].json()
            assert refused["code"] == 4 and "per minute" in refused["description"]
            assert 1 <= int(answers[2].headers["retry-after"]) <= 60
            # Polling the accepted tasks is never limited.
            for _ in range(5):
                fetched = await http.get(f"/mj/task/{answers[0].json()['result']}/fetch", headers=relay.headers)
                assert fetched.status_code == 200
            assert len(upstream_calls(simulator_session, "/submit/imagine")) == 2
            assert (await relay.balances())["used"] == 2 * IMAGINE_PRICE
