"""Delivering client callbacks (notifyHook / callback_url) from the persisted outbox.

Each callback carries Standard Webhooks headers (https://www.standardwebhooks.com), signed with the
task owner's own webhook secret (accounts/webhook_secrets.py), never with the gateway's master key:

    webhook-id: msg_<delivery id>         the same on every retry of one callback: de-duplicate on it
    webhook-timestamp: <unix seconds>      of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">

A failed delivery is retried with exponential backoff; after MAX_ATTEMPTS it is marked dead (kept
for inspection). A callback to a non-public address (when private delivery is not allowed) is
dropped at once, since no retry can change that. Every dropped callback is logged and counted
(mjgate_webhook_dropped_total).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone

import aiohttp
import structlog
from standardwebhooks import Webhook

from mjgate import metrics
from mjgate.accounts.webhook_secrets import secrets_of
from mjgate.clock import now_ms
from mjgate.db import Database
from mjgate.models import WebhookDelivery
from mjgate.netguard import is_private_target, public_only_session, refuse_private_literal
from mjgate.webhooks import repository

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 12
BASE_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 15 * 60_000
DELIVERY_TIMEOUT_S = 10


def message_id(row: WebhookDelivery) -> str:
    return f"msg_{row.id}"


def standard_headers(secret: str, msg_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The three Standard Webhooks headers, signed by the reference library."""
    when = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode("utf-8"))}


def backoff_ms(attempts: int) -> int:
    return min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** max(0, attempts - 1))


class WebhookDeliverer:
    def __init__(self, db: Database, http: aiohttp.ClientSession, owner: str,
                 *, allow_private: bool = False, batch_size: int = 100, lease_ms: int = 60_000, concurrency: int = 16,
                 idle_interval_s: float = 1.0):
        self.db = db
        # Webhook URLs are chosen by clients: unless the operator allows private targets, they go
        # through a session that only connects to public addresses (no SSRF into the gateway's network).
        self.allow_private = allow_private
        self.http = http if allow_private else None
        self.owner = owner
        self._secrets: dict[int, str | None] = {}  # delivery id -> its signing secret, per cycle
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
            owners = await repository.task_owners(session, {r.task_id for r in rows})
            secrets = await secrets_of(session, set(owners.values()))
        if not rows:
            return 0
        self._secrets = {row.id: secrets.get(owners.get(row.task_id)) for row in rows}
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
        secret = self._secrets.get(row.id)
        if secret is None:  # the task or its owner is gone: nobody to sign for
            await self._drop(row, "the task's owner no longer exists")
            return False
        headers = {"Content-Type": "application/json", "User-Agent": "mjgate-webhook/1",
                   **standard_headers(secret, message_id(row), body, int(time.time()))}
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
            if is_private_target(exc):
                await self._drop(row, f"not a public address ({error})")
                return False
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
            log.warning("webhook dropped: given up", delivery=row.id, task=row.task_id, url=row.url, error=error)
            metrics.WEBHOOKS_DROPPED.labels(reason="gave_up").inc()
        else:
            values = dict(attempts=attempts, last_error=error, next_attempt_at=now + backoff_ms(attempts))
        async with self.db.write() as session:
            await repository.finish(session, row.id, self.owner, values)

    async def _drop(self, row: WebhookDelivery, reason: str) -> None:
        """Give a callback up now: no retry would deliver it."""
        log.warning("webhook dropped", delivery=row.id, task=row.task_id, url=row.url, reason=reason)
        metrics.WEBHOOKS_DROPPED.labels(reason="private_target" if "public address" in reason else "no_owner").inc()
        async with self.db.write() as session:
            await repository.finish(session, row.id, self.owner,
                                    dict(status="dead", attempts=row.attempts + 1, last_error=reason[:500]))

    async def _release(self, ids: list[int]) -> None:
        if not ids:
            return
        async with self.db.write() as session:
            await repository.release(session, ids, self.owner)
