"""Random and mutated inputs on every client-facing route: never a 500, always the dialect's envelope,
and nothing charged for a refused request. Seeded, so a failure replays exactly."""

from __future__ import annotations

import json
import random
import string
from urllib.parse import quote

import pytest

from tests.fixtures.relay import add_simulator_channel, make_relay
from tests.factories import insert_tasks, make_user, task_row

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
CASES = 150
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
NASTY_STRINGS = ["", " ", "\x00", "null", "true", "-1", "0", "1e309", "NaN", "😀" * 50, "' OR 1=1 --", "%s%s%n",
                 "../../etc/passwd", "MJ::JOB::upsample::1::", "MJ::Inpaint::1::x::SOLO", "<script>", "a" * 9000,
                 "data:image/png;base64,!!!", PNG, "1730621826053455 U1", "http://127.0.0.1:5432/"]


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 3])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, float("1e-300")])
    if kind in (4, 5):
        if rng.random() < 0.5:
            return rng.choice(NASTY_STRINGS)
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(30)))
    if kind in (6, 7):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELDS): random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


FIELDS = ["prompt", "taskId", "customId", "action", "index", "content", "base64", "base64Array", "botType",
          "notifyHook", "state", "dimensions", "maskBase64", "image", "sourceBase64", "targetBase64", "ids",
          "image_id", "mode", "async", "callback_url", "timeout", "mask", "id", "trace_id", "offset", "limit",
          "image_url", "x"]

MJ_ROUTES = ["imagine", "change", "simple-change", "action", "modal", "describe", "blend", "shorten", "video",
             "edits", "upload-discord-images"]


def bodies(rng: random.Random, valid: dict):
    """Random objects, random non-objects, raw garbage, and valid bodies with one field mutated."""
    for _ in range(CASES):
        roll = rng.random()
        if roll < 0.3:
            yield json.dumps({k: random_value(rng) for k in rng.sample(FIELDS, rng.randrange(1, 6))}).encode()
        elif roll < 0.4:
            yield json.dumps(random_value(rng)).encode()
        elif roll < 0.5:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        else:
            body = dict(valid)
            body[rng.choice(list(body) + FIELDS)] = random_value(rng)
            yield json.dumps(body).encode()


@sqlite_only
async def test_fuzz_midjourney_proxy_submits(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    parent = (await relay.post("/mj/submit/imagine", {"prompt": "fuzz parent"}))["result"]
    await relay.wait(parent)
    before = await relay.balances()
    rng = random.Random(20261123)
    valid = {"prompt": "a fox", "taskId": parent, "action": "UPSCALE", "index": 1, "content": f"{parent} U1",
             "customId": "MJ::JOB::upsample::1::x", "base64Array": [PNG, PNG], "base64": PNG}
    accepted = 0
    for route in MJ_ROUTES:
        for raw in bodies(rng, valid):
            resp = await client.post(f"/mj/submit/{route}", content=raw,
                                     headers={**relay.headers, "Content-Type": "application/json"})
            assert resp.status_code == 200, (route, raw[:200], resp.status_code, resp.text[:300])
            answer = resp.json()
            assert set(answer) == {"code", "description", "result", "properties"}, answer
            assert isinstance(answer["code"], int) and answer["description"], answer
            accepted += answer["code"] in (1, 21)
    money = await relay.balances()
    # Whatever was accepted was paid; whatever was refused cost nothing; the ledger agrees.
    assert money["quota"] == money["ledger"] and money["used"] >= before["used"]
    assert accepted > 0  # the mutations do reach the upstream sometimes


@sqlite_only
async def test_fuzz_acedata(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    rng = random.Random(7)
    valid = {"prompt": "a fox", "action": "generate", "async": True, "ids": ["1"], "id": "1"}
    for route in ("imagine", "describe", "tasks"):
        for raw in bodies(rng, valid):
            resp = await client.post(f"/midjourney/{route}", content=raw,
                                     headers={**relay.headers, "Content-Type": "application/json"})
            assert resp.status_code != 500 or resp.json()["error"]["code"] == "api_error", resp.text[:300]
            body = resp.json()
            assert "trace_id" in body, body
            if resp.status_code >= 400:
                assert body["success"] is False and set(body["error"]) >= {"code", "message"}, body
    money = await relay.balances()
    assert money["quota"] == money["ledger"]


@sqlite_only
async def test_fuzz_management_query_strings(client, db):
    admin = await make_user(db, "boss", role="admin")
    await insert_tasks(db, [task_row(admin["id"]) for _ in range(3)])
    rng = random.Random(99)
    params = ["p", "page_size", "mj_id", "channel_id", "start_timestamp", "end_timestamp", "x"]
    for _ in range(CASES * 2):
        query = "&".join(f"{rng.choice(params)}={quote(rng.choice(NASTY_STRINGS + [str(rng.randrange(-10**12, 10**12))]))}"
                         for _ in range(rng.randrange(1, 5)))
        for path in ("/api/mj/", "/api/mj/self"):
            resp = await client.get(f"{path}?{query}", headers=admin["headers"])
            assert resp.status_code in (200, 400), (query, resp.status_code, resp.text[:300])
            body = resp.json()
            assert body["success"] is (resp.status_code == 200) and "message" in body


@sqlite_only
async def test_fuzz_read_routes(client, db):
    relay = await make_relay(client, db)
    rng = random.Random(3)
    for _ in range(CASES):
        junk = quote(rng.choice(NASTY_STRINGS), safe="") or "x"
        for path in (f"/mj/task/{junk}/fetch", f"/mj/task/{junk}/image-seed", f"/mj/image/{junk}?sig={junk}"):
            resp = await client.get(path, headers=relay.headers)
            assert resp.status_code in (400, 403, 404), (path, resp.status_code, resp.text[:200])
