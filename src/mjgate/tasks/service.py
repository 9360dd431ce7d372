"""Submitting work: authorize, price, reserve with the task insert, forward with failover, record.

Transactions are short on purpose: the reservation and the task row commit before the upstream
is called (so a slow upstream holds no database lock), and the outcome commits after. A crash in
between leaves a charged task with no upstream id; the poller settles it after SUBMIT_GRACE_MS.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from mjgate.billing import ledger
from mjgate.billing.pricing import load_tables, quote
from mjgate.channels.health import HealthRecorder
from mjgate.channels.selection import candidates
from mjgate.clock import now_ms
from mjgate.db import Database
from mjgate.events import EventBus
from mjgate.errors import BadRequest, Forbidden, NotFound, UpstreamError
from mjgate.models import ApiKey, Channel, Task, User, WebhookDelivery
from mjgate.tasks import transitions
from mjgate.tasks.actions import MODAL_ACTIONS
from mjgate.tasks.ids import new_mj_id
from mjgate.tasks.views import mjproxy_task_json
from mjgate.upstream.client import SubmitResult, UpstreamClient, UpstreamUnavailable

log = structlog.get_logger(__name__)

ACCEPTED = {1, 21, 22}
# Refusals before acceptance that another channel may not share: queue full, system error,
# no account. (3 on a follow-up means "parent unknown" and is final: there is no other channel.)
RETRYABLE = {23, 9, 3}
MJ_ID_ATTEMPTS = 5
WAIT_REFRESH_S = 3.0


@dataclass
class Caller:
    user: User
    key: ApiKey | None


@dataclass
class SubmitSpec:
    action: str
    path: str  # the upstream route, e.g. "/submit/imagine"
    body: dict  # the upstream body; "{task}" placeholders are replaced by the parent's upstream id
    mode: str
    explicit_mode: bool = False  # the client chose the mode by path prefix: keep it upstream
    parent: Task | None = None
    prompt: str = ""
    state: str = ""
    bot_type: str = "MID_JOURNEY"
    notify_hook: str = ""
    request: dict = field(default_factory=dict)
    dialect: str = "mjproxy"
    trace_id: str | None = None
    public_base: str = ""  # the base URL the client called, for absolute URLs in later callbacks


@dataclass
class SubmitOutcome:
    code: int
    description: str
    task: Task | None = None
    result: object = None  # what the client gets as `result` when it is not a task id (upload)
    properties: dict = field(default_factory=dict)


def check_key_allows(caller: Caller, action: str) -> None:
    key = caller.key
    if key is not None and key.allowed_actions and action not in key.allowed_actions:
        raise Forbidden(f"this key may not run {action}")


def _fill(value, upstream_id: str):
    if isinstance(value, str):
        return value.replace("{task}", upstream_id)
    if isinstance(value, dict):
        return {k: _fill(v, upstream_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, upstream_id) for v in value]
    return value


def task_event(task: Task) -> dict:
    """What live views are told about a change (they read the full task from the store)."""
    return {"type": "task", "user_id": task.user_id, "mj_id": task.mj_id, "action": task.action,
            "status": task.status, "progress": task.progress, "updated_at": task.updated_at,
            "fail_reason": task.fail_reason}


class TaskService:
    def __init__(self, db: Database, upstream: UpstreamClient, events: EventBus | None = None, *,
                 secret_key: str = "", image_url_ttl_s: int = 3600, public_url: str | None = None,
                 callback_url=None):
        self.db = db
        self.upstream = upstream
        self.events = events or EventBus()
        self.secret_key = secret_key
        self.image_url_ttl_s = image_url_ttl_s
        self.public_url = public_url
        # callback_url(task) -> the gateway's signed notify URL for this task, or None
        self.callback_url = callback_url
        self.image_copier = None  # set by the app when an image store is configured
        self.health = HealthRecorder(db)  # flushed by the app's lifespan
        # dialect -> task -> the JSON its client's webhook receives; each dialect registers its own.
        self.payload_renderers = {"mjproxy": self._mjproxy_payload}

    def _mjproxy_payload(self, task: Task) -> dict:
        return mjproxy_task_json(task, self.base_url_for(task), self.secret_key, self.image_url_ttl_s)

    def base_url_for(self, task: Task) -> str:
        return (self.public_url or task.public_base or "").rstrip("/")

    def enqueue_webhook(self, session, task: Task) -> None:
        """Queue the client's callback for this change in the transaction that made the change."""
        if not task.notify_hook:
            return
        render = self.payload_renderers.get(task.dialect, self._mjproxy_payload)
        now = now_ms()
        session.add(WebhookDelivery(task_id=task.id, url=task.notify_hook, payload=render(task), status="pending",
                                    attempts=0, next_attempt_at=now, last_error="", created_at=now))

    async def apply_snapshot(self, session, task: Task, snap: dict, *, lease_owner: str | None = None):
        change = await transitions.apply_snapshot(session, task, snap, lease_owner=lease_owner)
        if change.changed:
            self.enqueue_webhook(session, change.task)
        return change

    async def fail(self, session, task: Task, reason: str, *, lease_owner: str | None = None):
        change = await transitions.fail(session, task, reason, lease_owner=lease_owner)
        if change.changed:
            self.enqueue_webhook(session, change.task)
        return change

    async def changed(self, task: Task) -> None:
        """Announce a committed change (never before commit: a listener may read the store at once)."""
        if self.image_copier is not None:
            self.image_copier.schedule(task)
        await self.events.publish(task_event(task))

    async def wait_terminal(self, task: Task, timeout_s: float, *, on_change=None) -> Task:
        """Wait until the task is terminal or the timeout passes; returns the latest row.

        Woken by events, with a periodic refresh as the safety net (a missed event, or no poller).
        on_change(task) is awaited for every observed change of status or progress.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        last = (task.status, task.progress)
        async with self.events.subscribe(task.user_id) as queue:
            while not task.terminal:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    while True:
                        event = await asyncio.wait_for(queue.get(), min(remaining, WAIT_REFRESH_S))
                        if event.get("mj_id") == task.mj_id:
                            break
                except asyncio.TimeoutError:
                    pass
                async with self.db.read() as session:
                    task = await session.get(Task, task.id) or task
                task = await self.refresh(task)
                if on_change is not None and (task.status, task.progress) != last:
                    last = (task.status, task.progress)
                    await on_change(task)
        return task

    # ------------------------------------------------------------------ submit

    async def submit(self, caller: Caller, spec: SubmitSpec) -> SubmitOutcome:
        check_key_allows(caller, spec.action)
        task, channels = await self._reserve(caller, spec)
        outcome = await self._forward(task, channels, spec)
        return outcome

    async def _plan(self, caller: Caller, spec: SubmitSpec) -> tuple[list[Channel], int]:
        """Channels to try and the price, read before the write transaction so it stays short."""
        async with self.db.read() as session:
            if spec.parent is not None:
                channel = await session.get(Channel, spec.parent.channel_id) if spec.parent.channel_id else None
                if channel is None:
                    raise NotFound(f"the channel of task {spec.parent.mj_id} no longer exists")
                channels = [channel]
            else:
                channels = await candidates(session, caller.user.group, spec.mode, spec.action)
                if not channels:
                    raise NotFound(f"no channel serves {spec.action} in {spec.mode} mode for group {caller.user.group!r}")
            tables = await load_tables(session)
        price = quote(tables, spec.action, caller.user.group, spec.mode)
        if spec.action in MODAL_ACTIONS:
            # The modal step is paid up front with the action: one charge per task, and a
            # modal the client never sends times out and is refunded.
            price += quote(tables, "MODAL", caller.user.group, spec.mode)
        return channels, price

    async def _reserve(self, caller: Caller, spec: SubmitSpec) -> tuple[Task, list[Channel]]:
        channels, price = await self._plan(caller, spec)
        for attempt in range(MJ_ID_ATTEMPTS):
            try:
                async with self.db.write() as session:
                    await ledger.reserve(session, caller.user.id, caller.key, price)
                    now = now_ms()
                    task = Task(
                        mj_id=new_mj_id(), user_id=caller.user.id, token_id=caller.key.id if caller.key else None,
                        channel_id=channels[0].id if spec.parent is not None else None,
                        parent_id=spec.parent.id if spec.parent else None, action=spec.action, mode=spec.mode,
                        bot_type=spec.bot_type, prompt=spec.prompt, prompt_en=spec.prompt, description="",
                        state=spec.state, status="NOT_START", progress="0%", image_url="", video_url="",
                        video_urls=[], buttons=[], properties={}, fail_reason="", quota=price, request=spec.request,
                        notify_hook=spec.notify_hook, dialect=spec.dialect, trace_id=spec.trace_id, submit_time=now,
                        public_base=spec.public_base[:255], upstream_missing=0,
                        created_at=now, updated_at=now, next_poll_at=now + transitions.SUBMIT_GRACE_MS,
                        poll_attempts=0, stored_image="",
                    )
                    session.add(task)
                    await session.flush()
                    ledger.record_charge(session, task)
                return task, channels
            except IntegrityError:
                if attempt == MJ_ID_ATTEMPTS - 1:
                    raise
                log.warning("mj_id clash, retrying", attempt=attempt)
        raise AssertionError("unreachable")

    async def _forward(self, task: Task, channels: list[Channel], spec: SubmitSpec) -> SubmitOutcome:
        last: SubmitResult | None = None
        last_error = ""
        follow_up = spec.parent is not None
        for channel in channels:
            body = _fill(spec.body, spec.parent.upstream_id) if follow_up else dict(spec.body)
            if self.callback_url is not None:
                body["notifyHook"] = self.callback_url(task)
            try:
                result = await self.upstream.submit(
                    channel.base_url, channel.secret, spec.path, body, spec.mode if spec.explicit_mode else None
                )
            except UpstreamUnavailable as exc:
                last_error = f"channel {channel.id} unavailable: {exc}"
                log.warning("upstream unavailable", channel=channel.id, error=str(exc))
                await self._channel_health(channel.id, ok=False, error=str(exc))
                continue
            if result.code in ACCEPTED:
                if spec.action == "UPLOAD":
                    return await self._settle_upload(task, channel, result)
                if isinstance(result.result, (str, int)) and str(result.result):
                    return await self._accepted(task, channel, result)
                last_error = f"channel {channel.id} accepted without a task id"
                continue
            last = result
            if result.code in RETRYABLE and not follow_up:
                await self._channel_health(channel.id, ok=False, error=result.description)
                continue
            break
        if last is None:
            last = SubmitResult(9, last_error or "no channel could take the task")
        await self._refused(task, last)
        return SubmitOutcome(last.code, last.description or "refused by the upstream", None, None, last.properties)

    async def _accepted(self, task: Task, channel: Channel, result: SubmitResult) -> SubmitOutcome:
        now = now_ms()
        status = "MODAL" if result.code == 21 else "SUBMITTED"
        description = result.description or "Submit success"
        values = dict(
            channel_id=channel.id, upstream_id=str(result.result), code=result.code, status=status,
            description=description, updated_at=now, next_poll_at=now + transitions.POLL_FAST_MS,
            properties={k: v for k, v in result.properties.items() if k == "numberOfQueues"},
        )
        try:
            async with self.db.write() as session:
                await session.execute(update(Task).where(Task.id == task.id).values(**values))
                for key, value in values.items():
                    setattr(task, key, value)
                self.enqueue_webhook(session, task)
        except IntegrityError:
            # The upstream handed out an id it already gave us for another task: we cannot track
            # this one apart from it, so it is settled as failed and released.
            await self._refused(task, SubmitResult(9, f"channel {channel.id} reused task id {result.result}"))
            return SubmitOutcome(9, "the upstream returned a task id already in use")
        self.health.record(channel.id, ok=True)
        await self.changed(task)
        return SubmitOutcome(result.code, description, task, None, values["properties"])

    async def _settle_upload(self, task: Task, channel: Channel, result: SubmitResult) -> SubmitOutcome:
        urls = result.result if isinstance(result.result, list) else [result.result]
        urls = [str(u) for u in urls if u]
        now = now_ms()
        values = dict(channel_id=channel.id, code=result.code, status="SUCCESS", progress="100%",
                      description=result.description or "Upload success", properties={"urls": urls},
                      start_time=now, finish_time=now, updated_at=now, next_poll_at=None)
        async with self.db.write() as session:
            await session.execute(update(Task).where(Task.id == task.id).values(**values))
            for key, value in values.items():
                setattr(task, key, value)
            self.enqueue_webhook(session, task)
        self.health.record(channel.id, ok=True)
        await self.changed(task)
        return SubmitOutcome(1, values["description"], task, urls)

    async def _refused(self, task: Task, result: SubmitResult) -> None:
        now = now_ms()
        reason = f"refused by the upstream (code {result.code}): {result.description}".strip(": ")
        async with self.db.write() as session:
            await session.execute(
                update(Task).where(Task.id == task.id, Task.code.is_(None)).values(
                    code=result.code, status="FAILURE", progress="", fail_reason=reason[:2000],
                    description=result.description[:2000], finish_time=now, updated_at=now, next_poll_at=None,
                )
            )
            await ledger.give_back(session, task, kind="release", memo=reason[:500])
        task.status, task.code, task.fail_reason, task.updated_at = "FAILURE", result.code, reason[:2000], now
        await self.changed(task)

    async def _channel_health(self, channel_id: int, *, ok: bool, error: str = "") -> None:
        self.health.record(channel_id, ok=ok, error=error)

    # ------------------------------------------------------------------ modal

    async def submit_modal(self, caller: Caller, task: Task, body: dict) -> SubmitOutcome:
        """Continue a task waiting in MODAL (code 21) on its own channel; paid with the action itself."""
        if task.status != "MODAL":
            raise BadRequest(f"task {task.mj_id} is {task.status}, not waiting for a modal")
        check_key_allows(caller, task.action)
        async with self.db.read() as session:
            channel = await session.get(Channel, task.channel_id)
        if channel is None:
            raise NotFound(f"the channel of task {task.mj_id} no longer exists")
        upstream_body = {**body, "taskId": task.upstream_id}
        upstream_body.pop("notifyHook", None)
        if self.callback_url is not None:
            upstream_body["notifyHook"] = self.callback_url(task)
        try:
            result = await self.upstream.submit(channel.base_url, channel.secret, "/submit/modal", upstream_body)
        except UpstreamUnavailable as exc:
            return SubmitOutcome(9, f"the task's channel is unavailable: {exc}", task)
        if result.code not in ACCEPTED:
            # The task stays in MODAL: the client may correct its prompt or mask and try again.
            return SubmitOutcome(result.code, result.description or "refused by the upstream", task)
        if result.result and str(result.result) != task.upstream_id:
            log.info("modal continued under a new upstream id", task=task.mj_id, upstream=result.result)
        async with self.db.write() as session:
            fresh = await session.get(Task, task.id)
            prompt = str(body.get("prompt") or "")
            change = await transitions.apply_values(
                session, fresh, {"status": "SUBMITTED", "progress": "0%", **({"prompt": prompt} if prompt else {}),
                                 **({"upstream_id": str(result.result)} if result.result else {})}
            )
            if change.changed:
                self.enqueue_webhook(session, change.task)
        if change.changed:
            await self.changed(change.task)
        return SubmitOutcome(1, result.description or "Submit success", change.task)

    # ------------------------------------------------------------------ reads

    async def refresh(self, task: Task, *, stale_ms: int = 2_000) -> Task:
        """Fetch a stale unfinished task from its channel now (the poller is the regular path)."""
        if task.terminal or not task.upstream_id or not task.channel_id or now_ms() - task.updated_at < stale_ms:
            return task
        async with self.db.read() as session:
            channel = await session.get(Channel, task.channel_id)
        if channel is None:
            return task
        try:
            snap = await self.upstream.fetch(channel.base_url, channel.secret, task.upstream_id)
        except UpstreamUnavailable as exc:
            log.info("refresh failed", task=task.mj_id, error=str(exc))
            return task
        if snap is None:
            return task  # the poller decides when a missing task is lost
        async with self.db.write() as session:
            fresh = await session.get(Task, task.id)
            if fresh is None:
                return task
            change = await self.apply_snapshot(session, fresh, snap)
        if change.changed:
            await self.changed(change.task)
        return change.task

    async def image_seed(self, task: Task) -> dict:
        if not task.upstream_id or not task.channel_id:
            raise NotFound(f"task {task.mj_id} has no upstream task")
        async with self.db.read() as session:
            channel = await session.get(Channel, task.channel_id)
        if channel is None:
            raise NotFound(f"the channel of task {task.mj_id} no longer exists")
        try:
            answer = await self.upstream.image_seed(channel.base_url, channel.secret, task.upstream_id)
        except UpstreamUnavailable as exc:
            raise UpstreamError(f"the task's channel is unavailable: {exc}") from None
        if answer is None:
            raise NotFound(f"the upstream has no seed for task {task.mj_id}")
        return {"code": answer.get("code", 1), "description": answer.get("description", ""),
                "result": answer.get("result"), "properties": {}}
