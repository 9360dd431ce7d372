"""Operator alerts: a channel cooling down, disabled by the breaker, or back.

Each alert is logged, counted (/metrics), published on the event bus (admins' live stream and the
console's banner) and, when MJGATE_ALERT_WEBHOOK_URL is set, POSTed there as JSON.
"""

from __future__ import annotations

import asyncio

import aiohttp
import structlog

from mjgate import metrics
from mjgate.clock import now_ms
from mjgate.events import EventBus

log = structlog.get_logger(__name__)

WEBHOOK_TIMEOUT_S = 10


class Alerts:
    def __init__(self, events: EventBus, http: aiohttp.ClientSession | None = None, webhook_url: str = ""):
        self.events = events
        self.http = http
        self.webhook_url = webhook_url
        self._posting: set[asyncio.Task] = set()

    async def emit(self, event: str, channel_id: int, channel_name: str, message: str) -> None:
        alert = {"type": "alert", "user_id": None, "mj_id": None, "event": event, "channel_id": channel_id,
                 "channel": channel_name, "message": message, "at": now_ms()}
        log.warning("channel alert", alert=event, channel=channel_id, message=message)
        metrics.BREAKER_EVENTS.labels(channel=str(channel_id), event=event).inc()
        await self.events.publish(alert)
        if self.webhook_url and self.http is not None:
            posting = asyncio.create_task(self._post(alert))
            self._posting.add(posting)
            posting.add_done_callback(self._posting.discard)

    async def _post(self, alert: dict) -> None:
        try:
            timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
            async with self.http.post(self.webhook_url, json=alert, timeout=timeout) as response:
                if response.status >= 300:
                    log.warning("alert webhook refused", status=response.status)
        except Exception as exc:  # an alert that cannot be sent is still in the log and the metrics
            log.warning("alert webhook failed", error=str(exc))
