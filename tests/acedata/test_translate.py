"""POST /midjourney/translate and `translation: true`, through a local stub of an OpenAI-compatible
chat endpoint (MJGATE_TRANSLATE_URL / _KEY / _MODEL)."""

from __future__ import annotations


import httpx
import pytest
from aiohttp import web

from mjgate.translation import chat_url, split_prompt
from tests.acedata.conftest import PNG_DATA_URI, app_with, make_ace

DICTIONARY = {"一只红色的狐狸在雪中": "a red fox in the snow", "给它戴上围巾": "give it a scarf",
              "海浪拍打沙滩": "waves lapping at the sand", "精致,无暇,洁白的天使": "Exquisite, flawless, pure white angel"}


class ChatStub:
    """An OpenAI-compatible /v1/chat/completions that translates from DICTIONARY and records each call."""

    def __init__(self, status: int = 200):
        self.status = status
        self.calls: list[tuple[dict, dict]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append((body, dict(request.headers)))
        if self.status != 200:
            return web.json_response({"error": {"message": "overloaded"}}, status=self.status)
        text = body["messages"][-1]["content"]
        answer = DICTIONARY.get(text, f"english of {text}")
        return web.json_response({"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": answer}}]})

    async def __aenter__(self):
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


def upstream_calls(sim, fragment: str) -> list[dict]:
    return [r for r in sim.requests() if fragment in r["path"]]


async def ace_with_translator(db, db_url, tmp_path, sim, stub: ChatStub | None):
    overrides = dict(translate_url=stub.url, translate_key="sk-translate", translate_model="tiny-translator") \
        if stub else {}
    application = app_with(db_url, tmp_path, **overrides)
    lifespan = application.router.lifespan_context(application)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=application, raise_app_exceptions=False),
                               base_url="http://gateway.test")
    return await make_ace(client, db, sim), lifespan, client


async def test_without_a_translator_it_is_not_implemented_and_free(db, db_url, tmp_path, simulator_session):
    ace, lifespan, client = await ace_with_translator(db, db_url, tmp_path, simulator_session, None)
    try:
        for path, body in (("/midjourney/translate", {"content": "你好"}),
                           ("/midjourney/imagine", {"prompt": "一只红色的狐狸在雪中", "translation": True}),
                           ("/midjourney/edits", {"prompt": "给它戴上围巾", "image_url": PNG_DATA_URI,
                                                  "translation": True}),
                           ("/midjourney/videos", {"prompt": "海浪拍打沙滩", "image_url": PNG_DATA_URI,
                                                   "translation": True})):
            resp = await ace.call(path, body)
            assert resp.status_code == 400, resp.text
            error = resp.json()["error"]
            assert error["code"] == "api_not_implemented" and "MJGATE_TRANSLATE_URL" in error["message"]
        assert upstream_calls(simulator_session, "/submit/") == []
        assert (await ace.relay.balances())["used"] == 0
        # translation: false needs no translator.
        assert (await ace.imagine({"prompt": "a fox", "translation": False}))["success"] is True
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_translate_and_translation_true(db, db_url, tmp_path, simulator_session):
    async with ChatStub() as stub:
        ace, lifespan, client = await ace_with_translator(db, db_url, tmp_path, simulator_session, stub)
        try:
            answer = await ace.ok("/midjourney/translate", {"content": "精致,无暇,洁白的天使"})
            assert answer["success"] is True and answer["content"] == "Exquisite, flawless, pure white angel"
            body, headers = stub.calls[-1]
            assert headers["Authorization"] == "Bearer sk-translate" and body["model"] == "tiny-translator"
            assert body["messages"][0]["role"] == "system" and body["messages"][-1]["content"] == "精致,无暇,洁白的天使"

            # imagine: only the words go to the translator; the parameters stay as written.
            made = await ace.imagine({"prompt": "一只红色的狐狸在雪中 --ar 16:9", "translation": True})
            assert stub.calls[-1][0]["messages"][-1]["content"] == "一只红色的狐狸在雪中"
            sent = upstream_calls(simulator_session, "/submit/imagine")[-1]["json"]
            assert sent["prompt"] == "a red fox in the snow --ar 16:9"
            fetched = (await client.get(f"/mj/task/{made['task_id']}/fetch", headers=ace.headers)).json()
            assert fetched["prompt"] == "一只红色的狐狸在雪中 --ar 16:9"
            assert fetched["promptEn"] == "a red fox in the snow --ar 16:9"
            listed = (await client.get("/api/mj/self", params={"mj_id": made["task_id"]},
                                       headers=ace.relay.user["headers"])).json()["data"]["items"][0]
            assert listed["prompt_en"] == "a red fox in the snow --ar 16:9"

            # Vary (Region)'s prompt is translated before the button is pressed (and paid).
            up = await ace.imagine({"action": "upscale1", "image_id": made["image_id"]})
            await ace.imagine({"action": "variation_region", "image_id": up["image_id"], "mask": PNG_DATA_URI,
                               "prompt": "给它戴上围巾", "translation": True})
            assert upstream_calls(simulator_session, "/submit/modal")[-1]["json"]["prompt"] == "give it a scarf"

            await ace.ok("/midjourney/edits", {"prompt": "给它戴上围巾", "image_url": PNG_DATA_URI, "translation": True})
            assert upstream_calls(simulator_session, "/submit/edits")[-1]["json"]["prompt"] == "give it a scarf"
            await ace.ok("/midjourney/videos", {"prompt": "海浪拍打沙滩", "image_url": PNG_DATA_URI, "translation": True})
            assert upstream_calls(simulator_session, "/submit/video")[-1]["json"]["prompt"] == "waves lapping at the sand"

            # translation: false never calls the translator.
            calls = len(stub.calls)
            await ace.imagine({"prompt": "一只红色的狐狸在雪中", "translation": False})
            assert len(stub.calls) == calls
            resp = await ace.call("/midjourney/translate", {})
            assert resp.status_code == 400 and "content" in resp.json()["error"]["message"]
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)


async def test_a_failing_translator_refuses_before_any_charge(db, db_url, tmp_path, simulator_session):
    async with ChatStub(status=503) as stub:
        ace, lifespan, client = await ace_with_translator(db, db_url, tmp_path, simulator_session, stub)
        try:
            resp = await ace.call("/midjourney/imagine", {"prompt": "一只红色的狐狸在雪中", "translation": True})
            assert resp.status_code == 500, resp.text
            error = resp.json()["error"]
            assert error["code"] == "api_error" and "translator" in error["message"] and "503" in error["message"]
            assert resp.json()["success"] is False
            assert upstream_calls(simulator_session, "/submit/imagine") == []
            assert (await ace.relay.balances())["used"] == 0
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)


def test_chat_url_and_what_is_kept_out_of_translation():
    assert chat_url("https://api.openai.com/v1") == "https://api.openai.com/v1/chat/completions"
    assert chat_url("https://llm.lan/v1/chat/completions/") == "https://llm.lan/v1/chat/completions"
    assert split_prompt("https://a.test/x.png http://b.test/y.png 一只猫 --ar 16:9 --v 6.1") == (
        ["https://a.test/x.png", "http://b.test/y.png"], "一只猫", ["--ar", "16:9", "--v", "6.1"])
    assert split_prompt("一只猫 坐着") == ([], "一只猫 坐着", [])
    assert split_prompt("--ar 1:1") == ([], "", ["--ar", "1:1"])
