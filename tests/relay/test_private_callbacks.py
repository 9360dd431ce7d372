"""A callback URL the gateway would never deliver to (loopback, private) is refused at submit, in
each dialect's words, unless MJGATE_WEBHOOK_ALLOW_PRIVATE; the user's webhook secret in the console."""

from __future__ import annotations

import httpx
import pytest

from mjgate.app import create_app
from tests.console.helpers import data, login
from tests.fixtures.app import gateway_settings
from tests.fixtures.relay import add_simulator_channel, make_relay

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PRIVATE = ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/hook", "http://[::1]/hook",
           "http://169.254.169.254/latest/meta-data", "http://app.localhost/hook"]


@pytest.fixture
async def guarded_client(db, db_url, tmp_path):
    app = create_app(gateway_settings(db_url, tmp_path, webhook_allow_private=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            yield http


@sqlite_only
async def test_private_callback_urls_are_refused_at_submit(guarded_client, db, simulator_session):
    relay = await make_relay(guarded_client, db)
    await add_simulator_channel(db, simulator_session)
    for url in PRIVATE:
        answer = await relay.post("/mj/submit/imagine", {"prompt": "a fox", "notifyHook": url})
        assert answer["code"] == 4 and "callback URL is refused" in answer["description"], answer
        assert "MJGATE_WEBHOOK_ALLOW_PRIVATE" in answer["description"]
        resp = await guarded_client.post("/midjourney/imagine", json={"prompt": "a fox", "callback_url": url},
                                         headers=relay.headers)
        assert resp.status_code == 400 and resp.json()["success"] is False, resp.text
        assert "callback URL is refused" in resp.json()["error"]["message"]
    money = await relay.balances()
    assert money["used"] == 0 and money["quota"] == money["ledger"]
    # A public address is accepted as before.
    answer = await relay.post("/mj/submit/imagine", {"prompt": "a fox", "notifyHook": "http://93.184.215.14/hook"})
    assert answer["code"] == 1, answer


@sqlite_only
async def test_private_callbacks_are_accepted_when_allowed(client, db, simulator_session):
    """The test gateway sets MJGATE_WEBHOOK_ALLOW_PRIVATE (its receivers listen on 127.0.0.1)."""
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    answer = await relay.post("/mj/submit/imagine", {"prompt": "a fox", "notifyHook": PRIVATE[0]})
    assert answer["code"] == 1, answer


async def test_the_console_shows_and_rotates_the_webhook_secret(client, db):
    console = await login(client, db, "carol")
    first = data(await console.get("/api/console/webhook-secret"))["secret"]
    assert first.startswith("whsec_") and data(await console.get("/api/console/webhook-secret"))["secret"] == first
    rotated = data(await console.post("/api/console/webhook-secret/rotate"))["secret"]
    assert rotated.startswith("whsec_") and rotated != first
    assert data(await console.get("/api/console/webhook-secret"))["secret"] == rotated
    # Rotating changes state: the CSRF rule applies.
    resp = await client.post("/api/console/webhook-secret/rotate", json={})
    assert resp.status_code == 403
