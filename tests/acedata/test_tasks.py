"""POST /midjourney/tasks: retrieve and retrieve_batch in seed 003's shape; one store for every dialect."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.acedata.conftest import PNG_DATA_URI, make_ace

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# Seed 003's retrieve example, as documented.
SEED_ITEM = {
    "_id": "668aae3f550a4144a540803b",
    "id": "7489df4c-ef03-4de0-b598-e9a590793434",
    "application_id": "9dec7b2a-1cad-41ff-8536-d4ddaf2525d4",
    "created_at": 1720364607.967,
    "credential_id": "68253cc8-505d-47f4-97ad-0050a62e4975",
    "request": {"mode": "fast", "prompt": "A cat sitting on a table", "action": "generate"},
    "type": "imagine",
    "hold": False,
    "image_id": "1259525319472185344",
    "job_id": "da317da6-f500-48e6-bf32-dd48b3e6f84f",
    "response": {
        "image_url": "https://platform.cdn.acedata.cloud/midjourney/7489df4c.png?imageMogr2/thumbnail/!50p",
        "image_width": 1024,
        "image_height": 1024,
        "actions": ["upscale1", "upscale2", "upscale3", "upscale4", "reroll",
                    "variation1", "variation2", "variation3", "variation4"],
        "raw_image_url": "https://platform.cdn.acedata.cloud/midjourney/7489df4c.png",
        "raw_image_width": 2048,
        "raw_image_height": 2048,
        "progress": 100,
        "image_id": "1259525319472185344",
        "task_id": "7489df4c-ef03-4de0-b598-e9a590793434",
        "success": True,
        "job_id": "da317da6-f500-48e6-bf32-dd48b3e6f84f",
        "hold": False,
    },
    "duration": 29.437000036239624,
    "finished_at": 1720364637.404,
}
# AceData's own bookkeeping (its database row, account objects, internal job): no meaning here.
NOT_OURS = {"_id", "application_id", "credential_id", "job_id", "hold"}


def assert_seed_shape(item: dict, *, extra: set[str] = frozenset()) -> None:
    """Every field of the seed's item and response, with the same JSON type; nothing else unannounced."""
    expected = set(SEED_ITEM) - NOT_OURS
    assert set(item) == expected | extra, set(item) ^ (expected | extra)
    for key in expected - {"response"}:
        assert type(item[key]) is type(SEED_ITEM[key]), (key, item[key])
    response_keys = set(SEED_ITEM["response"]) - NOT_OURS
    assert set(item["response"]) == response_keys | {"trace_id"}, set(item["response"]) ^ response_keys
    for key in response_keys:
        assert type(item["response"][key]) is type(SEED_ITEM["response"][key]), (key, item["response"][key])
    assert item["id"] == item["response"]["task_id"] == item["image_id"] == item["response"]["image_id"]
    assert item["finished_at"] >= item["created_at"]
    assert item["duration"] == pytest.approx(item["finished_at"] - item["created_at"], abs=0.002)
    assert item["response"]["raw_image_url"] == item["response"]["image_url"]


@sqlite_only
async def test_retrieve_matches_seed_003(ace):
    answer = await ace.imagine(dict(SEED_ITEM["request"]))
    before = time.time()
    got = await ace.retrieve(answer["task_id"])
    # The seed's item, plus the response's fields copied to the top level for AceData's CLI.
    top_level = set(got["response"]) - {"trace_id", "image_id"}  # the seed's item has its own image_id
    assert_seed_shape({k: v for k, v in got.items() if k not in top_level and k != "trace_id"})
    assert got["type"] == "imagine" and got["request"] == SEED_ITEM["request"]
    assert got["response"]["actions"] == SEED_ITEM["response"]["actions"]
    assert got["response"]["progress"] == 100 and got["response"]["success"] is True
    assert got["created_at"] <= before + 1 and got["duration"] < 30
    for key in top_level:
        assert got[key] == got["response"][key], key
    assert got["trace_id"] != got["response"]["trace_id"] == answer["trace_id"]


async def test_retrieve_batch_matches_seed_003(ace, client, db, simulator_session):
    first = await ace.imagine(dict(SEED_ITEM["request"]))
    second = await ace.imagine({**SEED_ITEM["request"], "prompt": "A beautiful girl"})
    other = await make_ace(client, db, simulator_session, name="mallory")
    theirs = await other.imagine({"prompt": "not yours", "async": True})
    batch = await ace.ok("/midjourney/tasks", {"action": "retrieve_batch", "id": "",
                                               "ids": [first["task_id"], "0000000000000000", theirs["task_id"],
                                                       second["task_id"], first["task_id"]]})
    assert set(batch) == {"items", "count", "trace_id"}
    assert batch["count"] == 2 and [i["id"] for i in batch["items"]] == [first["task_id"], second["task_id"]]
    for item in batch["items"]:
        assert_seed_shape(item)
    assert batch["items"][1]["request"]["prompt"] == "A beautiful girl"
    # Paging over the ids; count is the number of matches before paging.
    page = await ace.ok("/midjourney/tasks", {"action": "retrieve_batch", "ids": [first["task_id"], second["task_id"]],
                                              "offset": 1, "limit": 5})
    assert page["count"] == 2 and [i["id"] for i in page["items"]] == [second["task_id"]]
    # No ids: the caller's recent tasks, newest first, never another user's.
    recent = await ace.ok("/midjourney/tasks", {"action": "retrieve_batch", "offset": 0, "limit": 12})
    assert [i["id"] for i in recent["items"]] == [second["task_id"], first["task_id"]] and recent["count"] == 2
    limited = await ace.ok("/midjourney/tasks", {"action": "retrieve_batch", "limit": 1})
    assert [i["id"] for i in limited["items"]] == [second["task_id"]] and limited["count"] == 2
    # By trace id (the CLI's --trace-ids).
    traced = await ace.ok("/midjourney/tasks", {"action": "retrieve_batch",
                                                "trace_ids": [second["trace_id"], theirs["trace_id"]]})
    assert [i["id"] for i in traced["items"]] == [second["task_id"]]


async def test_retrieve_is_scoped_to_the_caller(ace, client, db, simulator_session):
    mine = await ace.imagine({"prompt": "mine", "async": True})
    other = await make_ace(client, db, simulator_session, name="mallory")
    for body in ({"action": "retrieve", "id": mine["task_id"]}, {"action": "retrieve", "trace_id": mine["trace_id"]},
                 {"action": "retrieve", "id": "0000000000000000"}):
        resp = await other.call("/midjourney/tasks", body)
        assert resp.status_code == 404, resp.text
        body = resp.json()
        assert body["success"] is False and body["error"]["code"] == "not_found"
        assert body["trace_id"] == resp.headers["x-trace-id"]
    resp = await ace.call("/midjourney/tasks", {"action": "retrieve"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_request"
    resp = await ace.call("/midjourney/tasks", {"action": "delete", "id": mine["task_id"]})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "api_not_implemented"
    resp = await ace.call("/midjourney/tasks", {"action": "retrieve_batch", "ids": "not-a-list"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_request"
    # No action: inferred from the body.
    assert (await ace.ok("/midjourney/tasks", {"id": mine["task_id"]}))["id"] == mine["task_id"]


async def _wait_mj(ace, mj_id: str) -> dict:
    deadline = time.monotonic() + 20
    while True:
        task = (await ace.client.get(f"/mj/task/{mj_id}/fetch", headers=ace.headers)).json()
        if task["status"] in ("SUCCESS", "FAILURE"):
            return task
        assert time.monotonic() < deadline, task
        await asyncio.sleep(0.2)


async def test_one_store_for_every_dialect(ace):
    # Made here, seen through midjourney-proxy and the management API.
    made_here = await ace.generate("a lighthouse")
    fetched = (await ace.client.get(f"/mj/task/{made_here['task_id']}/fetch", headers=ace.headers)).json()
    assert fetched["id"] == made_here["task_id"] and fetched["status"] == "SUCCESS"
    assert fetched["action"] == "IMAGINE" and fetched["prompt"] == "a lighthouse"
    assert fetched["imageUrl"].split("?")[0] == made_here["image_url"].split("?")[0]
    listed = await ace.client.post("/mj/task/list-by-condition", json={"ids": [made_here["task_id"]]},
                                   headers=ace.headers)
    assert [t["id"] for t in listed.json()] == [made_here["task_id"]]
    self_page = await ace.client.get("/api/mj/self", params={"mj_id": made_here["task_id"]},
                                     headers=ace.relay.user["headers"])
    assert [t["mj_id"] for t in self_page.json()["data"]["items"]] == [made_here["task_id"]]

    # Made through midjourney-proxy, seen here with its type.
    submitted = (await ace.client.post("/mj/submit/imagine", json={"prompt": "an old tram"},
                                       headers=ace.headers)).json()
    grid = await _wait_mj(ace, submitted["result"])
    upscale = next(b["customId"] for b in grid["buttons"] if b["label"] == "U4")
    up_id = (await ace.client.post("/mj/submit/action", json={"taskId": grid["id"], "customId": upscale},
                                   headers=ace.headers)).json()["result"]
    described = (await ace.client.post("/mj/submit/describe", json={"base64": PNG_DATA_URI},
                                       headers=ace.headers)).json()["result"]
    await _wait_mj(ace, up_id)
    await _wait_mj(ace, described)
    got = await ace.retrieve(grid["id"])
    assert got["type"] == "imagine" and got["response"]["success"] is True and got["image_url"]
    assert got["request"] == {"mode": "fast", "action": "generate", "prompt": "an old tram"}
    assert "upscale4" in got["actions"]
    got = await ace.retrieve(up_id)
    assert got["request"]["action"] == "upscale4" and "variation_region" in got["response"]["actions"]
    got = await ace.retrieve(described)
    assert got["type"] == "describe" and len(got["response"]["descriptions"]) == 4
    # An image made elsewhere can be transformed here.
    answer = await ace.imagine({"action": "variation_strong", "image_id": up_id})
    assert answer["success"] is True and answer["image_url"]
    batch = await ace.ok("/midjourney/tasks", {"action": "retrieve_batch", "limit": 100})
    assert {i["id"] for i in batch["items"]} == {made_here["task_id"], grid["id"], up_id, described,
                                                 answer["task_id"]}


@sqlite_only
async def test_seed_of_an_image(ace, client, db, simulator_session):
    grid = await ace.generate()
    seed = await ace.ok("/midjourney/seed", {"image_id": grid["image_id"]})
    assert seed["success"] is True and seed["image_id"] == grid["image_id"] and seed["seed"].isdigit()
    assert (await ace.ok("/midjourney/seed/", {"image_id": grid["image_id"]}))["seed"] == seed["seed"]
    other = await make_ace(client, db, simulator_session, name="mallory")
    resp = await other.call("/midjourney/seed", {"image_id": grid["image_id"]})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    resp = await ace.call("/midjourney/seed", {})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_request"
