"""The task use cases every face calls: submit (new tasks and button presses), continue a modal,
find the caller's task, refresh it from its channel, wait for it, read its seed.

The service knows no dialect: it takes Caller + SubmitSpec and answers typed outcomes
(tasks/outcomes.py) or raises typed errors (mjgate.errors), which each face renders itself.

Transactions are short on purpose: the reservation and the task row commit before the upstream
is called (so a slow upstream holds no database lock), and the outcome commits after. A crash in
between leaves a charged task with no upstream id; the poller settles it after the submit grace.
An upstream that takes longer than the submit timeout may still have taken the job: the task then
keeps its charge and its channel while the upstream's own callback (which names our task) can
adopt the job; if nothing comes within the submit grace it fails and is refunded.
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.exc import IntegrityError

from mjgate.billing import ledger
from mjgate.billing.pricing import quote, quote_task
from mjgate.channels.health import HealthRecorder
from mjgate.channels.selection import eligible, failover_order
from mjgate.scheduler import fallback
from mjgate.scheduler import repository as slots
from mjgate.scheduler.capacity import counted, open_now
from mjgate.clock import now_ms
from mjgate.db import Database
from mjgate.db.unit_of_work import unit_of
from mjgate.errors import BadRequest, Conflict, Forbidden, GatewayError, Kind, NotFound
from mjgate.events import EventBus
from mjgate.models import Channel, Task
from mjgate.netguard import private_target_problem
from mjgate.moderation import policy as moderation
from mjgate.reference import ReferenceData
from mjgate.tasks import idempotency, repository, transitions
from mjgate.tasks.actions import MODAL_ACTIONS, parse_custom_id
from mjgate.tasks.ids import new_mj_id
from mjgate.tasks.outcomes import Accepted, NeedsModal, Outcome, Refused, Uploaded
from mjgate.tasks.submission import Caller, SubmitSpec
from mjgate.upstream.port import CancelUnsupported, NoSeed, SubmitAnswer, Upstream, UpstreamUnavailable

log = structlog.get_logger(__name__)

MJ_ID_ATTEMPTS = 5
WAIT_REFRESH_S = 3.0
REFRESH_STALE_MS = 2_000


def check_key_allows(caller: Caller, action: str) -> None:
    key = caller.key
    if key is not None and key.allowed_actions and action not in key.allowed_actions:
        raise Forbidden(f"this key may not run {action}", kind=Kind.ACTION_NOT_ALLOWED)


def _taskid(value: object, name: str = "taskId") -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise BadRequest(f"{name} is required")
    return str(value).strip()[:64]


class _TakenElsewhere(Exception):
    """Another instance took the queued task first (ends the dispatch transaction, changing nothing)."""


def upstream_request(caller: Caller, spec: SubmitSpec) -> dict:
    """What the upstream is sent for this task, kept on the task while it waits in the queue."""
    parent = spec.parent
    return {"operation": spec.operation, "params": spec.params, "mode": spec.mode if spec.explicit_mode else None,
            "parent_upstream_id": parent.upstream_id if parent is not None else None,
            "channel_id": parent.channel_id if parent is not None else None, "group": caller.user.group}


class TaskService:
    def __init__(self, db: Database, upstream: Upstream, events: EventBus | None = None, *,
                 reference: ReferenceData | None = None, callback_url=None,
                 submit_grace_ms: int = transitions.SUBMIT_GRACE_MS, allow_private_callbacks: bool = False):
        self.db = db
        self.upstream = upstream
        self.events = events or EventBus()
        self.reference = reference or ReferenceData(db)
        # callback_url(task, channel) -> the gateway's signed notify URL for this task, or None
        self.callback_url = callback_url
        self.submit_grace_ms = submit_grace_ms  # how long an unconfirmed submission waits before it is settled
        # MJGATE_WEBHOOK_ALLOW_PRIVATE: else a client's callback URL must name a public address.
        self.allow_private_callbacks = allow_private_callbacks
        self.health = HealthRecorder(db)  # flushed by the background loop the resources start
        # Whether tasks wait in the gateway queue (as this process last saw it): a new task for
        # capacity-bound channels then queues behind them instead of taking a slot that frees first.
        self.queue_waiting = False

    # ------------------------------------------------------------------ finding tasks

    async def own(self, caller: Caller, ref: object, *, admin_sees_all: bool = False, refresh: bool = False,
                  what: str = "task") -> Task:
        """The caller's task by public id; another user's is "not found" (ids cannot be probed),
        unless `admin_sees_all` and the caller is an admin (the console)."""
        mj_id = _taskid(ref)
        async with self.db.reading() as session:
            task = await repository.get_by_mj_id(session, mj_id)
        if task is None or (task.user_id != caller.user.id and not (admin_sees_all and caller.user.is_admin)):
            raise NotFound(f"{what} {mj_id} not found")
        if task.queued_at is not None:
            await self.show_queue_positions([task])
            return task
        return await self.refresh(task) if refresh else task

    async def show_queue_positions(self, tasks: list[Task]) -> list[Task]:
        """Tell each task waiting in the gateway queue how many are ahead of it (in `description` and
        `properties.numberOfQueues`, as midjourney-proxy does for its own queue); not stored."""
        waiting = [t for t in tasks if t.queued_at is not None]
        if waiting:
            async with self.db.reading() as session:
                ahead = await slots.queue_positions(session, waiting)
            for task in waiting:
                n = ahead.get(task.id, 0)
                task.properties = {**(task.properties or {}), "numberOfQueues": n}
                task.description = f"In queue, {n} tasks ahead"
        return tasks

    async def parent_of(self, caller: Caller, ref: object, *, what: str = "task") -> Task:
        """The caller's own finished task whose buttons may be pressed."""
        parent = await self.own(caller, ref, refresh=True, what=what)
        if parent.status != "SUCCESS":
            raise BadRequest(f"{what} {parent.mj_id} is {parent.status}: its buttons work once it has succeeded")
        return parent

    # ------------------------------------------------------------------ submit

    async def submit(self, caller: Caller, spec: SubmitSpec) -> Outcome:
        """Check, price, reserve with the task insert, forward with failover, record the outcome."""
        try:
            check_key_allows(caller, spec.action)
            if (earlier := await idempotency.replay(self.db, caller.user.id, spec.idempotency)) is not None:
                return earlier  # a retry of a submit already made: its task, charged once
            await self._check_callback_url(spec)
            await self._screen(caller, spec.prompt, spec.params.get("prompt"))
            spec = await self._resolve(caller, spec)
            channels, price = await self._plan(caller, spec)
            request = upstream_request(caller, spec)
            # Kept with the task when it might have to be sent again as relax (scheduler/fallback.py).
            kept = request if spec.mode in fallback.FAST_MODES and any(c.mode_fallback for c in channels) else None
            task = await self._reserve(caller, spec, channels, price, kept)
        except idempotency.AlreadySubmitted as duplicate:
            return duplicate.outcome
        except GatewayError as exc:
            return Refused.of(exc)
        return await self._send(task, channels, request)

    async def _check_callback_url(self, spec: SubmitSpec) -> None:
        """A callback the delivery would refuse (a private target) is refused now, with the reason."""
        if not spec.notify_hook or self.allow_private_callbacks:
            return
        problem = await private_target_problem(spec.notify_hook)
        if problem:
            raise BadRequest(f"the callback URL is refused: {problem}; callbacks go only to public addresses "
                             "(the operator can allow private ones with MJGATE_WEBHOOK_ALLOW_PRIVATE)")

    async def _screen(self, caller: Caller, *texts) -> None:
        """Moderation before money: the prompt the client sent (a follow-up's inherited one was checked
        with its parent), and whether the user is blocked."""
        await moderation.screen(self.db, await self.reference.current(), caller.user.id, *texts)

    async def _resolve(self, caller: Caller, spec: SubmitSpec) -> SubmitSpec:
        """Fill a follow-up's parent and the fields it inherits; check the button pressed."""
        parent = spec.parent
        if parent is None and spec.parent_ref is not None:
            parent = await self.parent_of(caller, spec.parent_ref)
        if parent is None:
            spec.prompt = spec.prompt or ""
            spec.bot_type = spec.bot_type or "MID_JOURNEY"
            spec.mode = spec.mode or "fast"
            return spec
        if spec.custom_id is not None:
            parse_custom_id(spec.custom_id)
            if parent.buttons and spec.custom_id not in {b.get("customId") for b in parent.buttons}:
                raise BadRequest(f"customId is not one of task {parent.mj_id}'s buttons")
        spec.parent = parent
        spec.prompt = spec.prompt or parent.prompt
        spec.bot_type = spec.bot_type or parent.bot_type
        if spec.mode is None:
            # A follow-up runs at its parent's speed, and says so upstream when that is not the default.
            spec.mode, spec.explicit_mode = parent.mode, parent.mode != "fast"
        return spec

    async def _plan(self, caller: Caller, spec: SubmitSpec) -> tuple[list[Channel], int]:
        """Channels to try now (best first; empty when every channel that could run it is closed for
        now, so the task waits in the queue) and the price, from reference data (no write
        transaction is held for this)."""
        ref = await self.reference.current()
        if spec.parent is not None:
            channel = ref.channels.get(spec.parent.channel_id) if spec.parent.channel_id else None
            if channel is None:
                raise NotFound(f"the channel of task {spec.parent.mj_id} no longer exists", kind=Kind.NO_CHANNEL)
            channels = [channel]  # a follow-up runs where its parent's image is
        else:
            channels = self._candidates(ref, caller.user.group, spec.mode, spec.action)
            if channels is None:
                raise NotFound(f"no channel serves {spec.action} in {spec.mode} mode for group {caller.user.group!r}",
                               kind=Kind.NO_CHANNEL)
            channels = self._fast_or_fallback(spec, channels)
        price, spec.price_rule = quote_task(ref.prices, spec.action, caller.user.group, spec.mode, params=spec.params,
                                            prompt=spec.prompt, custom_id=spec.custom_id, bot_type=spec.bot_type)
        if spec.action in MODAL_ACTIONS:
            # The modal step is paid up front with the action: one charge per task, and a
            # modal the client never sends times out and is refunded.
            price += quote(ref.prices, "MODAL", caller.user.group, spec.mode)
        return channels, price

    @staticmethod
    def _fast_or_fallback(spec: SubmitSpec, channels: list[Channel]) -> list[Channel]:
        """Channels out of fast hours (with mode fallback) take a fast task only when no other can,
        and then as relax, priced as relax (scheduler/fallback.py)."""
        if spec.mode not in fallback.FAST_MODES or not channels:
            return channels
        now = now_ms()
        fresh = [c for c in channels if not fallback.fast_exhausted(c, now)]
        if fresh:
            return fresh
        if all(fallback.fast_exhausted(c, now) for c in channels):
            spec.mode_fallback, spec.mode, spec.explicit_mode = fallback.note(spec.mode), fallback.FALLBACK, True
        return channels

    @staticmethod
    def _candidates(ref, group: str, mode: str, action: str) -> list[Channel] | None:
        """The enabled channels that serve this, open now, in the order to try them; None if no
        channel serves it at all (an enabled one in cooldown or out of hours still counts: the task
        waits for it)."""
        serving = [c for c in ref.channels.values() if eligible(c, group, mode, action)]
        if not serving:
            return None
        now = now_ms()
        return failover_order([c for c in serving if open_now(c, now)])

    async def _reserve(self, caller: Caller, spec: SubmitSpec, channels: list[Channel], price: int,
                       request: dict | None = None) -> Task:
        for attempt in range(MJ_ID_ATTEMPTS):
            try:
                async with self.db.transaction() as session:
                    await ledger.reserve(session, caller.user.id, caller.key, price)
                    now = now_ms()
                    parent = spec.parent
                    task = await repository.insert(
                        session, mj_id=new_mj_id(), user_id=caller.user.id,
                        token_id=caller.key.id if caller.key else None,
                        channel_id=parent.channel_id if parent is not None else None,
                        parent_id=parent.id if parent is not None else None, action=spec.action, mode=spec.mode,
                        bot_type=spec.bot_type, prompt=spec.prompt, prompt_en=spec.prompt_en or spec.prompt, state=spec.state,
                        properties={**({"parentId": parent.mj_id} if parent is not None else {}),
                                    **({"modeFallback": spec.mode_fallback} if spec.mode_fallback else {})},
                        quota=price,
                        request=spec.request, notify_hook=spec.notify_hook, dialect=spec.dialect,
                        trace_id=spec.trace_id, public_base=spec.public_base[:255], submit_time=now,
                        next_poll_at=now + self.submit_grace_ms, holds_slot=True, price_rule=spec.price_rule,
                        upstream_request=request,
                    )
                    await ledger.record_charge(session, task)
                    await idempotency.claim(session, caller.user.id, spec.idempotency, task)
                return task
            except IntegrityError:
                await idempotency.raise_if_claimed(self.db, caller.user.id, spec.idempotency)
                if attempt == MJ_ID_ATTEMPTS - 1:
                    raise
                log.warning("mj_id clash, retrying", attempt=attempt)
        raise AssertionError("unreachable")

    def _notify_url(self, task: Task, channel: Channel) -> str | None:
        return self.callback_url(task, channel) if self.callback_url is not None else None

    async def _claim(self, task: Task, channel: Channel) -> bool:
        """Hold a slot on the channel for this task (a no-op for an uncounted channel)."""
        if not counted(channel):
            return True

        async def write(conn) -> bool:
            now = now_ms()
            slot = await slots.claim_channel(conn, channel, now)
            if slot is None:
                return False
            await slots.assign_channel(conn, task, channel.id, slot, now)
            return True

        return await self.db.run_transaction(write)

    async def _release_channel(self, task: Task) -> None:
        if task.channel_slot:
            await self.db.run_transaction(lambda conn: slots.release_channel(conn, task))

    async def _send(self, task: Task, channels: list[Channel], request: dict, *,
                    requeue_at: int | None = None) -> Outcome:
        """Send the task to the first channel that has room and takes it; failing over on a channel
        that is unreachable, full or asks to retry. When none has room, the task waits in the
        gateway queue. `requeue_at`: a dispatch from the queue (the one channel's slot is held, and
        the task goes back to its place in the queue unless the channel refuses it for good)."""
        claimed = requeue_at is not None
        if self.queue_waiting and not claimed and channels and all(counted(c) for c in channels) \
                and request["operation"] != "upload":
            return await self._enqueue(task, request)  # first come, first served
        last: SubmitAnswer | None = None
        last_error = ""
        full = not channels
        for channel in channels:
            if not claimed and not await self._claim(task, channel):
                full = True
                continue
            claimed = False
            try:
                answer = await self.upstream.submit(
                    channel, request["operation"], request["params"], mode=request.get("mode"),
                    parent_upstream_id=request.get("parent_upstream_id"), notify_url=self._notify_url(task, channel),
                )
            except UpstreamUnavailable as exc:
                self.health.record(channel.id, ok=False, error=str(exc))
                if getattr(exc, "maybe_taken", False):
                    # The request reached the channel and its answer was lost: the job may exist
                    # there. Another channel would run it twice, so wait for this one's word.
                    return await self._answer_lost(task, channel, str(exc))
                await self._release_channel(task)
                # A capacity-bound channel that did not answer is waited for in the queue (its
                # breaker decides when it gets traffic again); others fail over or refuse.
                full = full or counted(channel)
                last_error = f"channel {channel.id} unavailable: {exc}"
                log.warning("upstream unavailable", channel=channel.id, error=str(exc))
                continue
            if answer.accepted:
                if request["operation"] == "upload":
                    return await self._settle_upload(task, channel, answer)
                if answer.upstream_id:
                    return await self._accepted(task, channel, answer)
                await self._release_channel(task)
                last_error = f"channel {channel.id} accepted without a task id"
                continue
            last = answer
            if answer.refusal == Kind.QUEUE_FULL:
                await self._release_channel(task)  # its own queue is full: the gateway's takes the task
                full = True
                continue
            if answer.retryable:
                self.health.record(channel.id, ok=False, error=answer.description)
                await self._release_channel(task)
                continue
            break
        final = last is not None and not last.retryable and last.refusal != Kind.QUEUE_FULL
        if request["operation"] != "upload" and not final and (full or requeue_at is not None):
            return await self._enqueue(task, request, requeue_at)
        if last is None:
            last = SubmitAnswer(9, last_error or "no channel could take the task", refusal=Kind.UNAVAILABLE)
        # A refusal at submit is told in the answer itself; one after a wait in the queue by webhook.
        await self._refused(task, last, visible=requeue_at is not None)
        return Refused(last.refusal or Kind.UNAVAILABLE, last.description or "refused by the upstream",
                       properties=last.properties)

    async def _enqueue(self, task: Task, request: dict, queued_at: int | None = None) -> Outcome:
        """No channel can take the task now: it waits in the gateway queue, charged, for the
        dispatcher. `queued_at`: back to its earlier place (a dispatch that did not go through)."""
        async def write(conn) -> int | None:
            now = now_ms()
            if not await slots.enqueue(conn, task, request, queued_at or now, now):
                return None
            if queued_at is None:
                await unit_of(conn).changed(task, visible=False)  # a new entry wakes the dispatchers
            return (await slots.queue_positions(conn, [task])).get(task.id, 0)

        ahead = await self.db.run_transaction(write)
        if ahead is None:  # finished meanwhile (adopted by an upstream callback, or cancelled)
            async with self.db.reading() as session:
                fresh = await repository.get(session, task.id)
            return Accepted(fresh or task, "Submit success")
        self.queue_waiting = True
        log.info("task queued in the gateway", task=task.mj_id, ahead=ahead)
        return Accepted(task, f"In queue, {ahead} tasks ahead", ahead, {"numberOfQueues": ahead}, queued=True)

    async def take_from_queue(self, task: Task) -> Channel | None:
        """The dispatcher's first step: take a queued task out of the queue with a slot on the first of
        its channels that has room. None when none has (it stays queued) or another instance took it."""
        request = task.upstream_request or {}
        ref = await self.reference.current()
        if request.get("channel_id") is not None:  # a follow-up: its parent's channel or nothing
            channel = ref.channels.get(request["channel_id"])
            if channel is None:
                async with self.db.transaction() as session:
                    await transitions.fail(session, task, "the channel of its parent task no longer exists")
                return None
            channels = [channel] if open_now(channel, now_ms()) else []
        else:
            channels = self._candidates(ref, request.get("group") or "default", task.mode, task.action) or []
        for channel in channels:
            async def take(conn, channel=channel) -> bool:
                now = now_ms()
                slot = await slots.claim_channel(conn, channel, now) if counted(channel) else False
                if slot is None:
                    return False
                if not await slots.take_from_queue(conn, task, channel.id, slot, now, now + self.submit_grace_ms):
                    raise _TakenElsewhere()
                return True

            try:
                if await self.db.run_transaction(take):
                    return channel
            except _TakenElsewhere:
                return None
        return None

    async def send_from_queue(self, task: Task, channel: Channel, queued_at: int) -> bool:
        """The dispatcher's second step: send a task taken from the queue to its channel. False when it
        went back to its place in the queue (the channel was full after all, or unreachable)."""
        outcome = await self._send(task, [channel], task.upstream_request or {}, requeue_at=queued_at)
        return not (isinstance(outcome, Accepted) and outcome.queued)

    async def _accepted(self, task: Task, channel: Channel, answer: SubmitAnswer) -> Outcome:
        now = now_ms()
        description = answer.description or "Submit success"
        values = dict(channel_id=channel.id, upstream_id=answer.upstream_id, code=answer.code,
                      status="MODAL" if answer.needs_modal else "SUBMITTED", description=description,
                      updated_at=now, next_poll_at=now + transitions.POLL_FAST_MS,
                      properties={**task.properties, **({"numberOfQueues": answer.queue_position}
                                                         if answer.queue_position is not None else {})})
        try:
            await self._record_submitted(task, values)
        except IntegrityError:
            # The upstream handed out an id it already gave us for another task: we cannot track
            # this one apart from it, so it is settled as failed and released.
            bad = SubmitAnswer(9, f"channel {channel.id} reused task id {answer.upstream_id}", refusal=Kind.UNAVAILABLE)
            await self._refused(task, bad)
            return Refused(Kind.UNAVAILABLE, "the upstream returned a task id already in use")
        self.health.record(channel.id, ok=True)
        if answer.needs_modal:
            return NeedsModal(task, description)
        return Accepted(task, description, answer.queue_position, dict(answer.properties))

    async def _answer_lost(self, task: Task, channel: Channel, error: str) -> Outcome:
        now = now_ms()
        values = dict(channel_id=channel.id, status="SUBMITTED", updated_at=now,
                      description=f"waiting for the upstream's answer ({error})"[:2000],
                      next_poll_at=now + self.submit_grace_ms)
        await self._record_submitted(task, values)
        log.warning("submit answer lost; the task waits to be adopted", task=task.mj_id, channel=channel.id)
        return Accepted(task, values["description"])

    async def _settle_upload(self, task: Task, channel: Channel, answer: SubmitAnswer) -> Outcome:
        urls = answer.result if isinstance(answer.result, list) else [answer.result]
        urls = [str(u) for u in urls if u]
        now = now_ms()
        values = dict(channel_id=channel.id, code=answer.code, status="SUCCESS", progress="100%",
                      description=answer.description or "Upload success", properties={"urls": urls},
                      start_time=now, finish_time=now, updated_at=now, next_poll_at=None)
        await self._record_submitted(task, values, finished=True)
        self.health.record(channel.id, ok=True)
        return Uploaded(task, urls, values["description"])

    async def _refused(self, task: Task, answer: SubmitAnswer, *, visible: bool = False) -> None:
        now = now_ms()
        reason = f"refused by the upstream (code {answer.code}): {answer.description}".strip(": ")
        values = dict(code=answer.code, status="FAILURE", progress="", fail_reason=reason[:2000],
                      description=answer.description[:2000], finish_time=now, updated_at=now, next_poll_at=None)

        async def write(conn) -> None:
            await repository.record_refused(conn, task, values)
            await ledger.give_back(conn, task, kind="release", memo=reason[:500])
            await slots.release_slots(conn, task)
            await idempotency.release(conn, task)
            await moderation.count_upstream_refusal(conn, task, answer.description,
                                                    banned=answer.refusal == Kind.BANNED)
            await unit_of(conn).changed(task, visible=visible)

        await self.db.run_transaction(write)

    async def _record_submitted(self, task: Task, values: dict, *, finished: bool = False) -> None:
        """The upstream's answer, recorded even if the first connection is lost: the job exists now."""
        async def write(conn) -> None:
            if await repository.record_submitted(conn, task, values):
                if finished:
                    await slots.release_slots(conn, task)
                await unit_of(conn).changed(task)

        await self.db.run_transaction(write)

    # ------------------------------------------------------------------ modal

    async def modal(self, caller: Caller, ref: object, params: dict) -> Outcome:
        """Continue the caller's task waiting in MODAL on its own channel (paid with the action itself)."""
        try:
            task = await self.own(caller, ref)
            if task.status != "MODAL":
                raise BadRequest(f"task {task.mj_id} is {task.status}, not waiting for a modal")
            check_key_allows(caller, task.action)
            await self._screen(caller, params.get("prompt"))
            ref_data = await self.reference.current()
            channel = ref_data.channels.get(task.channel_id)
            if channel is None:
                raise NotFound(f"the channel of task {task.mj_id} no longer exists", kind=Kind.NO_CHANNEL)
        except GatewayError as exc:
            return Refused.of(exc)
        try:
            answer = await self.upstream.modal(channel, task.upstream_id, params,
                                               notify_url=self._notify_url(task, channel))
        except UpstreamUnavailable as exc:
            return Refused(Kind.UNAVAILABLE, f"the task's channel is unavailable: {exc}", task)
        if not answer.accepted:
            # The task stays in MODAL: the client may correct its prompt or mask and try again.
            return Refused(answer.refusal or Kind.UNAVAILABLE, answer.description or "refused by the upstream", task)
        if answer.upstream_id and answer.upstream_id != task.upstream_id:
            log.info("modal continued under a new upstream id", task=task.mj_id, upstream=answer.upstream_id)
        prompt = str(params.get("prompt") or "")
        async with self.db.transaction() as session:
            fresh = await repository.get(session, task.id)
            change = await transitions.apply_values(
                session, fresh, {"status": "SUBMITTED", "progress": "0%", **({"prompt": prompt} if prompt else {}),
                                 **({"upstream_id": answer.upstream_id} if answer.upstream_id else {})})
        return Accepted(change.task, answer.description or "Submit success", answer.queue_position)

    # ------------------------------------------------------------------ cancel

    async def cancel(self, caller: Caller, ref: object, *, admin_sees_all: bool = False) -> Task:
        """Cancel the caller's unfinished task: at once when it waits in the gateway queue, else by its
        channel's cancel route. It ends CANCEL and its charge is refunded, once."""
        task = await self.own(caller, ref, admin_sees_all=admin_sees_all)
        for _ in range(3):  # a queued task may be dispatched meanwhile: then its channel cancels it
            if task.terminal:
                raise Conflict(f"task {task.mj_id} is already {task.status}")
            if task.queued_at is not None:
                async with self.db.transaction() as session:
                    change = await transitions.cancel(session, task, "cancelled while waiting in the queue")
                if change.changed:
                    return change.task
            elif task.upstream_id is None:
                raise Conflict(f"task {task.mj_id} is being handed to its channel; try again in a moment",
                               retry_after="2")
            else:
                return await self._cancel_upstream(task)
            async with self.db.reading() as session:
                task = await repository.get(session, task.id) or task
        raise Conflict(f"task {task.mj_id} changed meanwhile; try again", retry_after="1")

    async def _cancel_upstream(self, task: Task) -> Task:
        channel = (await self.reference.current()).channels.get(task.channel_id)
        if channel is None:
            raise NotFound(f"the channel of task {task.mj_id} no longer exists", kind=Kind.NO_CHANNEL)
        try:
            cancelled, words = await self.upstream.cancel(channel, task.upstream_id)
        except CancelUnsupported:
            raise GatewayError(f"the channel of task {task.mj_id} cannot cancel tasks", status=501,
                               code="not_supported", kind=Kind.INVALID) from None
        except UpstreamUnavailable as exc:
            raise GatewayError(f"the task's channel is unavailable: {exc}", status=502, code="api_error",
                               kind=Kind.UNAVAILABLE) from None
        if not cancelled:
            fresh = await self.refresh(task, stale_ms=0)
            raise Conflict(f"the channel did not cancel task {task.mj_id} ({fresh.status}): {words}"[:500])
        async with self.db.transaction() as session:
            fresh = await repository.get(session, task.id)
            change = await transitions.cancel(session, fresh, "cancelled by its owner")
        return change.task

    # ------------------------------------------------------------------ news from the upstream

    async def refresh(self, task: Task, *, stale_ms: int = REFRESH_STALE_MS) -> Task:
        """Fetch a stale unfinished task from its channel now (the poller is the regular path)."""
        if task.terminal or not task.upstream_id or not task.channel_id or now_ms() - task.updated_at < stale_ms:
            return task
        channel = (await self.reference.current()).channels.get(task.channel_id)
        if channel is None:
            return task
        try:
            snap = await self.upstream.fetch(channel, task.upstream_id)
        except UpstreamUnavailable as exc:
            log.info("refresh failed", task=task.mj_id, error=str(exc))
            return task
        if snap is None:
            return task  # the poller decides when a missing task is lost
        async with self.db.transaction() as session:
            fresh = await repository.get(session, task.id)
            if fresh is None:
                return task
            change = await transitions.apply_snapshot(session, fresh, snap)
        return change.task

    async def pushed(self, mj_id: str, channel_id: int | None, payload: object) -> None:
        """A task the upstream pushed to the gateway's signed notify URL (which names our task and the
        channel it was sent to). A task whose submit answer was lost is adopted here."""
        snap = self.upstream.snapshot(payload)
        if snap is None:
            raise BadRequest("the notification is not a task")
        async with self.db.transaction() as session:
            task = await repository.get_by_mj_id(session, mj_id)
            if task is None:
                raise NotFound("unknown task")
            if task.upstream_id is None and channel_id is not None and task.channel_id in (None, channel_id) \
                    and not task.terminal:
                # The upstream's callback came before its submit answer was recorded (or instead of it).
                if not await repository.adopt(session, task, snap["id"], channel_id):
                    raise Forbidden("the notification names another task")
                log.info("adopted an upstream job whose submit answer was lost", task=mj_id, upstream=snap["id"])
            elif snap["id"] != task.upstream_id:
                raise Forbidden("the notification names another task")
            await transitions.apply_snapshot(session, task, snap)

    async def wait(self, task: Task, timeout_s: float, *, on_change=None) -> Task:
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
                async with self.db.reading() as session:
                    task = await repository.get(session, task.id) or task
                task = await self.refresh(task)
                if on_change is not None and (task.status, task.progress) != last:
                    last = (task.status, task.progress)
                    await on_change(task)
        return task

    async def seed(self, task: Task) -> str:
        """The seed of a finished image, from its channel."""
        if not task.upstream_id or not task.channel_id:
            raise NotFound(f"task {task.mj_id} has no upstream task")
        channel = (await self.reference.current()).channels.get(task.channel_id)
        if channel is None:
            raise NotFound(f"the channel of task {task.mj_id} no longer exists", kind=Kind.NO_CHANNEL)
        try:
            return await self.upstream.seed(channel, task.upstream_id)
        except UpstreamUnavailable as exc:
            raise GatewayError(f"the task's channel is unavailable: {exc}", status=502, code="api_error",
                               kind=Kind.UNAVAILABLE) from None
        except NoSeed as exc:
            raise BadRequest(f"no seed for task {task.mj_id}: {exc}") from None
