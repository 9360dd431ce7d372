"""Tasks, their lifecycle, and the bounded executor that runs them.

Each admitted task gets one asyncio task that sleeps between steps, so thousands of tasks cost
thousands of sleeping coroutines and no polling loop. At most `core_size` run at once; the rest
wait in a FIFO queue of at most `queue_size`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

from .buttons import GRID_ACTIONS, SINGLE_ACTIONS, buttons_for
from .config import SimulatorConfig
from .texts import describe_prompts, shorten_variants

TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCEL"})
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

    def to_json(self, base_url: str) -> dict:
        done = self.status == "SUCCESS"
        video = done and self.action == "VIDEO"
        video_url = f"{base_url}/mj/video/{self.id}.mp4" if video else None
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
            "imageUrl": f"{base_url}/mj/image/{self.id}.png" if done and self.image_kind else None,
            "videoUrl": video_url,
            "videoUrls": [{"url": video_url}] if video else None,
            "status": self.status,
            "progress": self.progress,
            "failReason": self.fail_reason,
            "buttons": list(self.buttons),
            "properties": {
                "finalPrompt": self.final_prompt,
                "finalZhPrompt": "",
                "discordInstanceId": "simulator",
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
    ) -> None:
        self._config = config
        self._rng = rng
        self._on_change = on_change
        self.tasks: dict[str, Task] = {}
        self._by_hash: dict[str, str] = {}
        self._running: dict[str, asyncio.Task] = {}
        self._waiting: deque[Task] = deque()
        self._last_id = 0

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

    async def _drive(self, task: Task) -> None:
        try:
            self._change(task, status="SUBMITTED", progress="0%", start_time=now_ms())
            await asyncio.sleep(self._config().start_delay_seconds)
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
        if task.fail_after is not None:
            reason = FAIL_REASONS[int(task.id) % len(FAIL_REASONS)]
            self._change(task, status="FAILURE", progress="", fail_reason=reason, finish_time=now_ms())
            return
        if task.action == "DESCRIBE":
            task.prompt = task.prompt_en = task.final_prompt = describe_prompts(task.upload or b"")
        elif task.action == "SHORTEN":
            task.prompt = task.prompt_en = task.final_prompt = shorten_variants(task.prompt)
        self._change(
            task,
            status="SUCCESS",
            progress="100%",
            buttons=buttons_for(task.action, task.hash),
            finish_time=now_ms(),
        )

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
