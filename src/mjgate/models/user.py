from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mjgate.db.base import Base, BigId

ROLES = ("user", "admin", "root")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16), default="user")
    status: Mapped[str] = mapped_column(String(16), default="enabled")  # enabled | disabled
    group: Mapped[str] = mapped_column("group_name", String(64), default="default")
    quota: Mapped[int] = mapped_column(BigInteger, default=0)
    used_quota: Mapped[int] = mapped_column(BigInteger, default=0)
    request_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # How many task rows the user has: kept by the reservation's own UPDATE, so a listing's total
    # needs no count over the user's tasks (12-18 ms at 100k on PostgreSQL).
    task_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Tasks not yet finished (queued or running) and the most an admin lets the user have (None = no
    # limit); last_dispatch_at orders users fairly when the gateway queue hands out free capacity.
    in_flight: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_in_flight: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_dispatch_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # sha256 hex of the dashboard access token; the token itself is shown once.
    access_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Signs this user's callbacks (Standard Webhooks): "whsec_" + base64 key; None until first needed.
    webhook_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Bumped on logout / password change: every older session cookie stops working.
    session_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    @property
    def is_admin(self) -> bool:
        return self.role in ("admin", "root")

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"
