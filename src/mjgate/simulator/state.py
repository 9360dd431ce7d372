"""Tasks, their lifecycle, and the bounded executor that runs them.

Each admitted task gets one asyncio task that sleeps between steps, so thousands of tasks cost
thousands of sleeping coroutines and no polling loop. As in midjourney-proxy (one executor per
Discord account), at most `core_size` run at once and the rest wait in a FIFO queue of at most
`queue_size`; a waiting task starts the moment a running one ends, in submission order.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

from .buttons import GRID_ACTIONS, SINGLE_ACTIONS, buttons_for
from .config import SimulatorConfig
from .texts import describe_prompts, shorten_variants

TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCEL"})
CANCELLABLE = frozenset({"NOT_START", "SUBMITTED", "IN_PROGRESS", "MODAL"})
# Jobs that spend no Midjourney GPU time: text jobs, and InsightFace's own face swaps.
NO_GPU_ACTIONS = frozenset({"DESCRIBE", "SHORTEN", "SWAP_FACE", "SWAP_VIDEO_FACE"})
VIDEO_ACTIONS = frozenset({"VIDEO", "SWAP_VIDEO_FACE"})
# Midjourney's error embed is titled "Credits exhausted"; the proxy fails the job it answered.
NO_FAST_HOURS_REASON = "Credits exhausted: this account has no fast hours left; submit in relax mode"
CANCEL_REASON = "Cancelled"
FAIL_REASONS = [
    "[Simulated] Banned prompt detected by the moderator",
    "[Simulated] Job action restricted",
    "[Simulated] Discord interaction failed",
    "[Simulated] Invalid parameter",
]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False)
class Task:
    id: str
    hash: str
    action: str
    prompt: str
    mode: str
    submit_time: int
    bot_type: str = "MID_JOURNEY"
    prompt_en: str = ""
    final_prompt: str = ""
    custom_id: str | None = None
    parent_id: str | None = None
    state: str | None = None
    notify_hook: str | None = None
    description: str = "Submit success"
    status: str = "NOT_START"
    progress: str = "0%"
    start_time: int | None = None
    finish_time: int | None = None
    fail_reason: str | None = None
    buttons: list[dict] = field(default_factory=list)
    # Number of progress steps shown before the planned failure; None when it will succeed.
    fail_after: int | None = None
    # What the picture is drawn from: a grid seed and a cell (0 = the whole grid).
    render_seed: str = ""
    render_index: int = 0
    aspect: tuple[int, int] = (1, 1)
    upload: bytes | None = None  # the image a DESCRIBE was given
    # VIDEO / SWAP_VIDEO_FACE: how many clips, their resolution, whether they loop.
    video_count: int = 0
    video_resolution: str = "480p"
    video_loop: bool = False
    extra_properties: dict = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def image_kind(self) -> str | None:
        if self.action in GRID_ACTIONS:
            return "grid"
        if self.action in SINGLE_ACTIONS:
            return "single"
        if self.action == "DESCRIBE":
            return "upload"
        return None

    @property
    def progress_percent(self) -> int | None:
        """The progress as a number while IN_PROGRESS with a picture to show, else None."""
        if self.status != "IN_PROGRESS" or self.image_kind not in ("grid", "single") or self.action in NO_GPU_ACTIONS:
            return None  # InsightFace swaps report no intermediate pictures
        try:
            percent = int(self.progress.rstrip("%"))
        except ValueError:
            return None
        return percent if 0 < percent < 100 else None

    def video_urls(self, base_url: str) -> list[str]:
        if self.status != "SUCCESS" or self.action not in VIDEO_ACTIONS:
            return []
        return [f"{base_url}/mj/video/{self.id}/{i}.mp4" for i in range(self.video_count)]

    def image_url(self, base_url: str, progress_images: bool) -> str | None:
        if self.status == "SUCCESS":
            if self.action == "SWAP_VIDEO_FACE":
                # midjourney-proxy (trueai-org) puts the swapped video's URL in imageUrl.
                return f"{base_url}/mj/video/{self.id}/0.mp4"
            return f"{base_url}/mj/image/{self.id}.png" if self.image_kind else None
        percent = self.progress_percent
        if progress_images and percent is not None:
            # A new URL per step, like Discord's intermediate attachments: caches never go stale.
            return f"{base_url}/mj/image/{self.id}/progress-{percent}.png"
        return None

    def to_json(self, base_url: str, progress_images: bool = True) -> dict:
        videos = self.video_urls(base_url)
        data = {
            "id": self.id,
            "action": self.action,
            "prompt": self.prompt,
            "promptEn": self.prompt_en,
            "description": self.description,
            "state": self.state,
            "submitTime": self.submit_time,
            "startTime": self.start_time,
            "finishTime": self.finish_time,
            "imageUrl": self.image_url(base_url, progress_images),
            "videoUrl": videos[0] if videos else None,
            "videoUrls": [{"url": url} for url in videos] if videos else None,
            "status": self.status,
            "progress": self.progress,
            "failReason": self.fail_reason,
            "buttons": list(self.buttons),
            "properties": {
                "finalPrompt": self.final_prompt,
                "finalZhPrompt": "",
                "discordInstanceId": "simulator",
                **self.extra_properties,
            },
            "botType": self.bot_type,
            "mode": self.mode,
        }
        if self.custom_id:
            data["customId"] = self.custom_id
        if self.parent_id:
            data["properties"]["parentId"] = self.parent_id
        return data


class QueueFull(Exception):
    pass


class TaskStore:
    def __init__(
        self,
        config: Callable[[], SimulatorConfig],
        rng: Callable[[], Random],
        on_change: Callable[[Task], None],
        stats: Counter[str] | None = None,
    ) -> None:
        self._config = config
        self._rng = rng
        self._on_change = on_change
        self.stats: Counter[str] = stats if stats is not None else Counter()
        self.tasks: dict[str, Task] = {}
        self._by_hash: dict[str, str] = {}
        self._running: dict[str, asyncio.Task] = {}
        self._waiting: deque[Task] = deque()
        self._last_id = 0
        self.fast_seconds_used = 0.0

    # ---- creation -------------------------------------------------------------------------

    def new_task(self, action: str, prompt: str, mode: str, **fields) -> Task:
        """A task with a fresh id, hash and failure plan; not yet visible to anyone."""
        rng, cfg = self._rng(), self._config()
        # "epoch-ms + 3 digits" as midjourney-proxy clients expect, kept strictly increasing
        # so a burst inside one millisecond cannot collide.
        self._last_id = max(now_ms() * 1000 + rng.randrange(1000), self._last_id + 1)
        task_id = str(self._last_id)
        fail_after = rng.randint(0, cfg.steps) if rng.random() < cfg.failure_rate else None
        task = Task(
            id=task_id,
            hash=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            action=action,
            prompt=prompt,
            prompt_en=fields.pop("prompt_en", prompt),
            final_prompt=fields.pop("final_prompt", prompt),
            mode=mode,
            submit_time=now_ms(),
            fail_after=fail_after,
            **fields,
        )
        if not task.render_seed:
            task.render_seed = f"{prompt}|{task_id}"
            task.render_index = 0 if task.image_kind == "grid" else 1
        return task

    def register(self, task: Task) -> None:
        self.tasks[task.id] = task
        self._by_hash[task.hash] = task.id

    def get(self, task_id: str) -> Task | None:
        return self.tasks.get(task_id)

    def by_hash(self, hash_: str) -> Task | None:
        task_id = self._by_hash.get(hash_)
        return self.tasks.get(task_id) if task_id else None

    # ---- executor -------------------------------------------------------------------------

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def queued_count(self) -> int:
        return len(self._waiting)

    def room(self) -> str:
        """"run" when a slot is free, "queue" when it must wait, "full" when it is refused."""
        cfg = self._config()
        if len(self._running) < cfg.core_size and not self._waiting:
            return "run"
        if len(self._waiting) < cfg.queue_size:
            return "queue"
        return "full"

    def admit(self, task: Task) -> int | None:
        """Register and start or queue `task`: how many wait ahead of it, None if it started."""
        room = self.room()
        if room == "full":
            raise QueueFull
        self.register(task)
        if room == "run":
            self._start(task)
            return None
        self._waiting.append(task)
        self._change(task, status="NOT_START")  # a confirmed MODAL task now waits its turn
        return len(self._waiting) - 1

    def active(self) -> list[Task]:
        """Running tasks, then queued ones in order."""
        running = [self.tasks[i] for i in self._running if i in self.tasks]
        return running + list(self._waiting)

    def pump(self) -> None:
        """Start queued tasks while slots are free (after a release or a bigger core_size)."""
        while self._waiting and len(self._running) < self._config().core_size:
            self._start(self._waiting.popleft())

    def _start(self, task: Task) -> None:
        self._running[task.id] = asyncio.get_running_loop().create_task(self._drive(task))
        if len(self._running) > self.stats["max_running_seen"]:
            self.stats["max_running_seen"] = len(self._running)

    async def _drive(self, task: Task) -> None:
        try:
            self._change(task, status="SUBMITTED", progress="0%", start_time=now_ms())
            await asyncio.sleep(self._config().start_delay_seconds)
            if self.needs_fast_hours(task) and self.fast_hours_left() == 0:
                # Midjourney took the job, then answered "Credits exhausted": the job fails.
                self.stats["failed_no_fast_hours"] += 1
                self._change(task, status="FAILURE", progress="", fail_reason=NO_FAST_HOURS_REASON,
                             finish_time=now_ms())
                return
            steps = self._config().steps
            for i in range(1, steps + 1):
                if task.fail_after is not None and i > task.fail_after:
                    break
                self._change(task, status="IN_PROGRESS", progress=f"{round(100 * i / (steps + 1))}%")
                await asyncio.sleep(self._config().step_seconds)
            self.complete(task)
        finally:
            if self._running.get(task.id) is asyncio.current_task():
                del self._running[task.id]
                self.pump()

    def complete(self, task: Task) -> None:
        """Move a task to its planned end state at once (idempotent)."""
        if task.terminal:
            return
        if task.start_time is None:
            task.start_time = now_ms()
        self._spend_fast_hours(task)
        if task.fail_after is not None:
            reason = FAIL_REASONS[int(task.id) % len(FAIL_REASONS)]
            self._change(task, status="FAILURE", progress="", fail_reason=reason, finish_time=now_ms())
            return
        if task.action == "DESCRIBE":
            task.prompt = task.prompt_en = task.final_prompt = describe_prompts(task.upload or b"")
        elif task.action == "SHORTEN":
            # midjourney-proxy keeps the prompt as sent and puts Midjourney's answer (the
            # shortened options) in the description and in properties.finalPrompt.
            task.final_prompt = task.description = shorten_variants(task.prompt)
        self._change(
            task,
            status="SUCCESS",
            progress="100%",
            buttons=buttons_for(task.action, task.hash),
            finish_time=now_ms(),
        )

    def finish(self, task: Task) -> bool:
        """End one queued or running task now, as planned (success or failure); False if it cannot."""
        if task.terminal or task.status == "MODAL":
            return False
        self._release(task)
        self.complete(task)
        self.pump()
        return True

    def _release(self, task: Task) -> None:
        """Take `task` out of the queue or off its slot (its driver stopped); no pump."""
        if task in self._waiting:
            self._waiting.remove(task)
        driver = self._running.pop(task.id, None)
        if driver is not None:
            driver.cancel()  # its finally sees it no longer owns the slot and leaves pump() to us

    # ---- cancel -----------------------------------------------------------------------------

    def cancel(self, task: Task) -> None:
        """Stop `task` where it is: out of the queue, or its driver stopped; status CANCEL.

        The caller checks `task.status in CANCELLABLE` first. Progress is left as it was, as a
        job stopped half-way is; its slot goes to the next waiting task at once.
        """
        self._release(task)
        self._spend_fast_hours(task)
        self.stats["cancelled"] += 1
        self._change(task, status="CANCEL", fail_reason=CANCEL_REASON, finish_time=now_ms())
        self.pump()

    # ---- fast hours -------------------------------------------------------------------------

    def needs_fast_hours(self, task: Task) -> bool:
        return task.mode in ("fast", "turbo") and task.action not in NO_GPU_ACTIONS

    def fast_hours_left(self) -> float | None:
        """0 when exhausted (or no_fast_hours is on), None when unlimited."""
        cfg = self._config()
        if cfg.no_fast_hours:
            return 0.0
        if cfg.fast_hours is None:
            return None
        return max(0.0, cfg.fast_hours - self.fast_seconds_used / 3600)

    def _spend_fast_hours(self, task: Task) -> None:
        # GPU time is the job's running time; turbo spends it twice as fast, as Midjourney bills.
        if task.start_time is None or not self.needs_fast_hours(task):
            return
        seconds = max(0, now_ms() - task.start_time) / 1000
        self.fast_seconds_used += seconds * (2 if task.mode == "turbo" else 1)

    def finish_all(self) -> int:
        """Complete every queued and running task now; MODAL tasks still wait for their modal."""
        pending = list(self._waiting) + [self.tasks[i] for i in self._running if i in self.tasks]
        self._waiting.clear()
        for driver in self._running.values():
            driver.cancel()
        self._running.clear()
        for task in pending:
            self.complete(task)
        return len(pending)

    def clear(self) -> None:
        """Forget everything, as an upstream restart would."""
        for driver in self._running.values():
            driver.cancel()
        self._running.clear()
        self._waiting.clear()
        self.tasks.clear()
        self._by_hash.clear()

    def _change(self, task: Task, **changes) -> None:
        if task.id not in self.tasks:
            return  # forgotten by a restart while its driver was between steps
        if all(getattr(task, k) == v for k, v in changes.items()):
            return
        for key, value in changes.items():
            setattr(task, key, value)
        self._on_change(task)
