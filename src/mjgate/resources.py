"""The one builder of everything long-lived: engines, Redis-backed buses and limits, the HTTP session,
the upstream, reference data, the task service, the image store, and the background loops.

`mjgate serve` opens it in the app's lifespan; `mjgate worker` opens it alone (no HTTP app) with
the background loops only. Closing stops the loops first, then drains, then releases connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import structlog
from sqlalchemy.orm import configure_mappers

from mjgate.api.callbacks import notify_path
from mjgate.auth import keyring
from mjgate.auth.cache import AuthCache
from mjgate.auth.keyring import Keyring
from mjgate.config import Settings
from mjgate.db import Database
from mjgate.db.unit_of_work import CommitHooks
from mjgate.events import EventBus
from mjgate.images.links import Links
from mjgate.images.own import GatewayImages
from mjgate.images.sizes import ImageSizes
from mjgate.images.store import ImageCopier, build_image_store
from mjgate.moderation import policy as moderation
from mjgate.ratelimit import build_rate_limiter
from mjgate.reference import ReferenceData
from mjgate.scheduler.alerts import Alerts
from mjgate.scheduler.breaker import Breaker, BreakerPolicy
from mjgate.tasks.announcer import Announcer
from mjgate.tasks.service import TaskService
from mjgate.tasks.transitions import submit_grace_ms
from mjgate.translation import Translator
from mjgate.upstream import build_upstream
from mjgate.webhooks.outbox import Outbox
from mjgate.workers import BackgroundWorkers

log = structlog.get_logger(__name__)

HTTP_POOL_LIMIT = 200
HTTP_POOL_PER_HOST = 100


class Resources:
    def __init__(self, settings: Settings, *, webhook_payloads):
        self.settings = settings
        moderation.configure(settings.moderation_hits_per_day, settings.moderation_block_minutes)
        self.secret_key = settings.resolved_secret_key()
        self.keyring = Keyring(self.secret_key)
        self.links = Links(self.keyring.key(keyring.IMAGE_URL), settings.image_url_ttl_s, settings.public_url,
                           accepted_keys=self.keyring.accepted(keyring.IMAGE_URL))
        self.notify_key = self.keyring.key(keyring.NOTIFY_URL)
        configure_mappers()  # now, not inside the first requests (12 ms, and 6% of a short profile's samples)
        self.db = Database(settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow,
                           pg_statement_cache_size=settings.pg_statement_cache_size)
        # One HTTP session per process for every upstream call and image relay.
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=HTTP_POOL_LIMIT, limit_per_host=HTTP_POOL_PER_HOST))
        self.events = EventBus(settings.redis_url)
        self.upstream = build_upstream(self.http, submit_timeout_s=settings.upstream_submit_timeout_s)
        self.reference = ReferenceData(self.db)
        self.key_cache = AuthCache(settings.relay_auth_cache_s)
        self.rate_limiter = build_rate_limiter(settings.rate_limit_per_minute, settings.redis_url)
        store = build_image_store(settings, self.http)
        self.image_copier = ImageCopier(self.db, self.http, store) if store is not None else None
        self.image_sizes = ImageSizes(self.http, self.reference, self.image_copier)
        self.gateway_images = GatewayImages(self.db, self.http, self.reference, self.links, store)
        translate_key = settings.translate_key.get_secret_value() if settings.translate_key else None
        self.translator = Translator(self.http, settings.translate_url, translate_key, settings.translate_model,
                                     settings.translate_timeout_s)
        self.tasks = TaskService(self.db, self.upstream, self.events, reference=self.reference,
                                 callback_url=self._callback_url if settings.upstream_callbacks else None,
                                 submit_grace_ms=submit_grace_ms(settings.task_timeout_s * 1000),
                                 allow_private_callbacks=settings.webhook_allow_private)
        self.alerts = Alerts(self.events, self.http, settings.alert_webhook_url)
        self.tasks.health.breaker = Breaker(self.db, self.reference, self.alerts, BreakerPolicy(
            failures=settings.breaker_failures, cooldown_ms=int(settings.breaker_cooldown_s * 1000),
            disable_after=settings.breaker_disable_after))
        self.db.hooks = CommitHooks(stage=Outbox(webhook_payloads(self.links)).stage,
                                    announce=Announcer(self.events, self.image_copier))
        self.workers: BackgroundWorkers | None = None
        self._health_stop = asyncio.Event()
        self._health_loop: asyncio.Task | None = None

    def _callback_url(self, task, channel) -> str | None:
        settings = self.settings
        base = (settings.callback_url or settings.public_url or task.public_base or "").rstrip("/")
        return base + notify_path(self.notify_key, task.mj_id, channel.id) if base else None

    async def start(self, *, background: bool) -> None:
        await self.events.start()
        # The channel health counters are flushed wherever submits or probes are counted.
        self._health_loop = asyncio.create_task(self.tasks.health.run(self._health_stop), name="mjgate-channel-health")
        if background:
            self.workers = BackgroundWorkers(self.db, self.tasks, self.http, self.settings,
                                             events=self.events, alerts=self.alerts,
                                             image_store=self.image_copier.store if self.image_copier else None)
            self.workers.start()

    async def close(self) -> None:
        if self.workers is not None:
            await self.workers.stop()
        if self.image_copier is not None:
            await self.image_copier.drain()
            await self.image_copier.store.close()
        await self.tasks.health.breaker.drain()
        self._health_stop.set()
        if self._health_loop is not None:
            await self._health_loop  # its last pass flushes what is still buffered
        await self.rate_limiter.close()
        await self.events.stop()
        await self.http.close()
        await self.db.dispose()


@contextlib.asynccontextmanager
async def opened(settings: Settings, *, background: bool) -> AsyncIterator[Resources]:
    from mjgate.dialects import webhook_payloads

    resources = Resources(settings, webhook_payloads=webhook_payloads)
    try:
        await resources.start(background=background)
        yield resources
    finally:
        await resources.close()
