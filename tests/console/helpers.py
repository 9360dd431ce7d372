"""Logged-in console sessions for API tests: a cookie jar plus the CSRF token the console sends."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tests.factories import make_user


@dataclass
class Console:
    http: httpx.AsyncClient
    user: dict
    csrf: str

    def _headers(self, extra: dict | None) -> dict:
        return {"X-CSRF-Token": self.csrf, **(extra or {})}

    async def get(self, path: str, **kw) -> httpx.Response:
        return await self.http.get(path, **kw)

    async def post(self, path: str, body=None, *, headers: dict | None = None) -> httpx.Response:
        return await self.http.post(path, json={} if body is None else body, headers=self._headers(headers))

    async def put(self, path: str, body, *, headers: dict | None = None) -> httpx.Response:
        return await self.http.put(path, json=body, headers=self._headers(headers))

    async def patch(self, path: str, body, *, headers: dict | None = None) -> httpx.Response:
        return await self.http.patch(path, json=body, headers=self._headers(headers))


def new_client(app, base_url: str = "http://gateway.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=base_url)


async def login(http: httpx.AsyncClient, db, name: str, *, role: str = "user", quota: int = 0,
                group: str = "default") -> Console:
    """Create user `name` (password pw-<name>) and log `http` in as them."""
    user = await make_user(db, name, role=role, quota=quota, password=f"pw-{name}", group=group)
    resp = await http.post("/api/console/login", json={"username": name, "password": f"pw-{name}"})
    assert resp.status_code == 200, resp.text
    return Console(http, user, resp.json()["data"]["csrf_token"])


def fail(resp: httpx.Response, status: int) -> str:
    """The response is the /api/ error envelope with this status; returns its message."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["success"] is False and body["message"], body
    return body["message"]


def data(resp: httpx.Response, status: int = 200):
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["success"] is True, body
    return body["data"]
