"""Delivering client callbacks (notifyHook / callback_url) from the persisted outbox.

Each body is signed: `X-Mjgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` with
the gateway's secret key, so a receiver can check origin and freshness. A failed delivery is
retried with exponential backoff; after MAX_ATTEMPTS it is marked dead (kept for inspection).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import aiohttp
import structlog

from mjgate import metrics
from mjgate.clock import now_ms
from mjgate.db import Database
from mjgate.models import WebhookDelivery
from mjgate.netguard import public_only_session, refuse_private_literal
from mjgate.webhooks import repository

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 12
BASE_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 15 * 60_000
DELIVERY_TIMEOUT_S = 10
SIGNATURE_HEADER = "X-Mjgate-Signature"


def signature(secret_key: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret_key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff_ms(attempts: int) -> int:
    return min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** max(0, attempts - 1))


class WebhookDeliverer:
    def __init__(self, db: Database, http: aiohttp.ClientSession, secret_key: str, owner: str,
                 *, allow_private: bool = False, batch_size: int = 100, lease_ms: int = 60_000, concurrency: int = 16,
                 idle_interval_s: float = 1.0):
        self.db = db
        # Webhook URLs are chosen by clients: unless the operator allows private targets, they go
        # through a session that only connects to public addresses (no SSRF into the gateway's network).
        self.allow_private = allow_private
        self.http = http if allow_private else None
        self.secret_key = secret_key
        self.owner = owner
        self.batch_size = batch_size
        self.lease_ms = lease_ms
        self.concurrency = concurrency
        self.idle_interval_s = idle_interval_s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                handled = await self.cycle()
            except Exception:
                log.exception("webhook cycle failed")
                handled = 0
            if handled < self.batch_size:
                try:
                    await asyncio.wait_for(stop.wait(), self.idle_interval_s)
                except asyncio.TimeoutError:
                    pass

    async def close(self) -> None:
        if not self.allow_private and self.http is not None:
            await self.http.close()
            self.http = None

    async def cycle(self) -> int:
        if self.http is None:
            self.http = public_only_session()
        async with self.db.write() as session:
            rows = await repository.claim_due_webhooks(
                session, self.owner, now_ms(), self.lease_ms, self.batch_size, self.db.supports_skip_locked
            )
        if not rows:
            return 0
        by_task: dict[int, list[WebhookDelivery]] = {}
        for row in rows:
            by_task.setdefault(row.task_id, []).append(row)
        semaphore = asyncio.Semaphore(self.concurrency)
        await asyncio.gather(*(self._deliver_in_order(chain, semaphore) for chain in by_task.values()))
        return len(rows)

    async def _deliver_in_order(self, chain: list[WebhookDelivery], semaphore: asyncio.Semaphore) -> None:
        async with semaphore:
            for position, row in enumerate(chain):
                if not await self._deliver(row):
                    # Later callbacks of this task wait for this one: release them untouched.
                    await self._release([r.id for r in chain[position + 1:]])
                    return

    async def _deliver(self, row: WebhookDelivery) -> bool:
        body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(self.secret_key, body, timestamp),
                   "User-Agent": "mjgate-webhook/1"}
        error = ""
        try:
            if not self.allow_private:
                refuse_private_literal(row.url)
            async with self.http.post(row.url, data=body, headers=headers, allow_redirects=False,
                                      timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S)) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    await self._finish(row, delivered=True)
                    metrics.WEBHOOKS.labels(result="delivered").inc()
                    return True
                error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        metrics.WEBHOOKS.labels(result="failed").inc()
        await self._finish(row, delivered=False, error=error)
        return False

    async def _finish(self, row: WebhookDelivery, *, delivered: bool, error: str = "") -> None:
        now = now_ms()
        attempts = row.attempts + 1
        if delivered:
            values = dict(status="delivered", attempts=attempts, delivered_at=now, last_error="")
        elif attempts >= MAX_ATTEMPTS:
            values = dict(status="dead", attempts=attempts, last_error=error)
            log.warning("webhook given up", delivery=row.id, url=row.url, error=error)
        else:
            values = dict(attempts=attempts, last_error=error, next_attempt_at=now + backoff_ms(attempts))
        async with self.db.write() as session:
            await repository.finish(session, row.id, self.owner, values)

    async def _release(self, ids: list[int]) -> None:
        if not ids:
            return
        async with self.db.write() as session:
            await repository.release(session, ids, self.owner)
