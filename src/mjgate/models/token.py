from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mjgate.db.base import Base, BigId


class ApiKey(Base):
    """An `sk-...` relay key ("token" in new-api's words). Stored as a sha256 hash."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_hint: Mapped[str] = mapped_column(String(32), default="")  # "sk-abcd…wxyz" for listings
    status: Mapped[str] = mapped_column(String(16), default="enabled")  # enabled | disabled
    # Who disabled it: "admin" (only an admin may enable it again) or "owner"; None while enabled.
    disabled_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # epoch ms; None = never
    unlimited: Mapped[bool] = mapped_column(Boolean, default=True)
    remain_quota: Mapped[int] = mapped_column(BigInteger, default=0)
    used_quota: Mapped[int] = mapped_column(BigInteger, default=0)
    allowed_actions: Mapped[list | None] = mapped_column(JSON, nullable=True)  # None = every action
    allowed_ips: Mapped[list | None] = mapped_column(JSON, nullable=True)  # None = any address
    # Unfinished tasks submitted with this key, and the most allowed (None = no limit of its own).
    in_flight: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_in_flight: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    accessed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
