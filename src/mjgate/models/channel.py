from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from mjgate.db.base import Base, BigId

CHANNEL_STATUSES = ("enabled", "manual_disabled", "auto_disabled")
MODES = ("fast", "relax", "turbo")


class Channel(Base):
    """One upstream midjourney-proxy-compatible service."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    base_url: Mapped[str] = mapped_column(String(512))
    # Sent upstream as mj-api-secret; needed in clear, so it is never echoed back in full.
    secret: Mapped[str] = mapped_column(String(512), default="")
    status: Mapped[str] = mapped_column(String(16), default="enabled")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    groups: Mapped[list] = mapped_column(JSON, default=lambda: ["default"])
    modes: Mapped[list] = mapped_column(JSON, default=lambda: list(MODES))
    actions: Mapped[list | None] = mapped_column(JSON, nullable=True)  # None = every action
    # Hosts its image URLs may point at; None = the base URL's own host only.
    image_hosts: Mapped[list | None] = mapped_column(JSON, nullable=True)
    success_count: Mapped[int] = mapped_column(BigInteger, default=0)
    failure_count: Mapped[int] = mapped_column(BigInteger, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_ok_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # Capacity (migration 0006): the upstream runs max_running at once and queues max_queued more;
    # the gateway never has more than their sum there (None = unbounded). in_flight is that count.
    max_running: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_queued: Mapped[int | None] = mapped_column(Integer, nullable=True)
    in_flight: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Tasks sent per UTC day (None = no cap); day_start is the epoch ms of the day day_count counts.
    daily_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    day_start: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    day_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # "HH:MM-HH:MM" in UTC when the channel takes new tasks (None = always); may wrap midnight.
    active_hours: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Circuit breaker: no new tasks before cooldown_until; cooldowns_in_row of them auto-disable it.
    cooldown_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cooldowns_in_row: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Opt-in: fast tasks go out as relax while the account has no fast hours (until the time noted).
    mode_fallback: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    fast_exhausted_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"
