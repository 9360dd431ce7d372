from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from mjgate.db.base import Base, BigId

TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCEL"})
_STATS_COLUMNS = ("action", "mode", "status", "quota", "refunded_at", "finish_time")
STATUSES = ("NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS", "SUCCESS", "FAILURE", "CANCEL")


class Task(Base):
    """One Midjourney job, from submission to result (SPEC §2)."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("channel_id", "upstream_id"),
        # Listing: newest first, by owner, by channel, or everything; the id breaks ties.
        Index("ix_tasks_user_submit", "user_id", "submit_time", "id"),
        Index("ix_tasks_channel_submit", "channel_id", "submit_time", "id"),
        Index("ix_tasks_submit", "submit_time", "id"),
        # Polling: only unfinished tasks carry a next_poll_at (terminal ones are NULL).
        Index("ix_tasks_next_poll", "next_poll_at"),
        # Dashboards (migration 0005_dashboard): every aggregated column in the index, so a range
        # of tasks is summed from the index alone; and the status filter / "running now".
        Index("ix_tasks_stats", "submit_time", "channel_id", "user_id", *_STATS_COLUMNS),
        Index("ix_tasks_user_stats", "user_id", "submit_time", *_STATS_COLUMNS),
        Index("ix_tasks_status_submit", "status", "submit_time", "id"),
        # The gateway queue: only tasks waiting for a channel carry a queued_at; a channel's
        # occupancy is counted over the tasks holding one of its slots.
        Index("ix_tasks_queued", "queued_at"),
        Index("ix_tasks_channel_slot", "channel_slot", "channel_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    mj_id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id"), nullable=True)
    upstream_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8), default="fast")
    bot_type: Mapped[str] = mapped_column(String(32), default="MID_JOURNEY")
    # Submit result code; written once when the upstream answers, never overwritten.
    code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prompt: Mapped[str] = mapped_column(Text, default="")
    prompt_en: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="NOT_START")
    progress: Mapped[str] = mapped_column(String(8), default="0%")
    image_url: Mapped[str] = mapped_column(Text, default="")
    video_url: Mapped[str] = mapped_column(Text, default="")
    video_urls: Mapped[list] = mapped_column(JSON, default=list)
    buttons: Mapped[list] = mapped_column(JSON, default=list)
    properties: Mapped[dict] = mapped_column(JSON, default=dict)
    fail_reason: Mapped[str] = mapped_column(Text, default="")
    quota: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The client's request as sent (AceData's `request{}`), its callback and trace id.
    request: Mapped[dict] = mapped_column(JSON, default=dict)
    notify_hook: Mapped[str] = mapped_column(Text, default="")
    dialect: Mapped[str] = mapped_column(String(16), default="mjproxy")
    trace_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    submit_time: Mapped[int] = mapped_column(BigInteger)
    start_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finish_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    next_poll_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    poll_attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stored_image: Mapped[str] = mapped_column(Text, default="")
    # Consecutive polls the upstream did not return this task (a lost task fails after a few).
    upstream_missing: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The base URL the client used, for absolute URLs in callbacks sent later.
    public_base: Mapped[str] = mapped_column(String(255), default="", server_default="")

    # Waiting in the gateway queue for a channel since this time (None = not queued); when it left
    # the queue for a channel (its timeout counts from then: the wait has its own limit).
    queued_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    dispatched_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Counted in its user's and key's in_flight (holds_slot) and its channel's (channel_slot); each
    # is cleared once, by the compare-and-set that gives the slot back when the task finishes.
    holds_slot: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    channel_slot: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # What to send upstream when a queued task is dispatched (operation, params, mode, parent, group).
    upstream_request: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # The price rule the task was charged by and the price (billing/price_rules.py); None: the action's table.
    price_rule: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES
