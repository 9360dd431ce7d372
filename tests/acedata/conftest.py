"""The AceData-style API against a real simulator: a user, a key, a channel, and a thin client."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from mjgate.app import create_app
from tests.fixtures.app import gateway_settings as settings_for
from tests.fixtures.relay import Relay, add_simulator_channel, make_relay

# A 1x1 PNG, as a data: URI and as bare base64.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PNG_DATA_URI = "data:image/png;base64," + PNG_B64


@pytest.fixture(autouse=True)
def quick_waits(monkeypatch):
    """Without a poller or upstream pushes in-process, a waiting request re-reads its task every
    WAIT_REFRESH_S; make that quick so a sync call ends soon after the simulator finishes."""
    monkeypatch.setattr("mjgate.tasks.service.WAIT_REFRESH_S", 0.25, raising=False)


@dataclass
class Ace:
    relay: Relay

    @property
    def client(self) -> httpx.AsyncClient:
        return self.relay.client

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.relay.key['key']}"}

    async def call(self, path: str, body: dict, *, headers: dict | None = None, **kw) -> httpx.Response:
        return await self.client.post(path, json=body, headers={**self.headers, **(headers or {})}, timeout=60, **kw)

    async def ok(self, path: str, body: dict, **kw) -> dict:
        resp = await self.call(path, body, **kw)
        assert resp.status_code == 200, resp.text
        data = resp.json()
        assert data["trace_id"] == resp.headers["x-trace-id"], (data, resp.headers)
        return data

    async def imagine(self, body: dict, **kw) -> dict:
        return await self.ok("/midjourney/imagine", body, **kw)

    async def retrieve(self, task_id: str) -> dict:
        return await self.ok("/midjourney/tasks", {"action": "retrieve", "id": task_id})

    async def generate(self, prompt: str = "a lighthouse at dusk") -> dict:
        answer = await self.imagine({"prompt": prompt})
        assert answer["success"] is True and answer.get("image_url"), answer
        return answer


async def make_ace(client, db, sim, **relay_options) -> Ace:
    relay = await make_relay(client, db, **relay_options)
    await add_simulator_channel(db, sim)
    return Ace(relay)


@pytest.fixture
async def ace(client, db, simulator_session) -> Ace:
    return await make_ace(client, db, simulator_session)


def app_with(db_url: str, tmp_path, **overrides):
    return create_app(settings_for(db_url, tmp_path, **overrides))
