from sqlalchemy import JSON, BigInteger, Integer, String, Text
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
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"
