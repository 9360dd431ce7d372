"""What a face hands the task service: who is asking (Caller) and what they ask for (SubmitSpec)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mjgate.models import ApiKey, Task, User
from mjgate.tasks.idempotency import IdempotencyKey


@dataclass
class Caller:
    user: User
    key: ApiKey | None  # None: the console, spending the user's balance without a key


@dataclass
class SubmitSpec:
    """One task to create.

    `operation` and `params` say what the upstream runs (upstream.port.OPERATIONS, with
    midjourney-proxy's field names). A follow-up names the task it acts on by `parent_ref` (its
    public id; the service checks it is the caller's and finished) or passes the `parent` it already
    resolved; `custom_id` is then the button pressed, which must be one of the parent's. Unset
    `prompt`, `bot_type` and `mode` are taken from the parent (a new task: "", MID_JOURNEY, fast).
    """

    action: str
    operation: str
    params: dict = field(default_factory=dict)
    mode: str | None = None
    explicit_mode: bool = False  # the client chose the mode (a path prefix, a field): keep it upstream
    parent_ref: str | None = None
    parent: Task | None = None
    custom_id: str | None = None
    prompt: str | None = None
    prompt_en: str | None = None  # the English prompt sent upstream, when the client's was translated
    bot_type: str | None = None
    state: str = ""
    notify_hook: str = ""
    request: dict = field(default_factory=dict)  # the client's request as recorded with the task
    dialect: str = "mjproxy"  # whose webhook payload the task's notify_hook receives
    trace_id: str | None = None
    public_base: str = ""  # the base URL the client called, for absolute URLs in later callbacks
    idempotency: IdempotencyKey | None = None  # the client's Idempotency-Key (tasks/idempotency.py)
    price_rule: dict | None = None  # set when priced: the snapshot of the price rule that matched
    mode_fallback: str | None = None  # "fast->relax" when its channels are out of fast hours (scheduler/fallback.py)
