from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mjgate.db.base import Base, BigId


class AuditEntry(Base):
    """An admin's hand on a task (refund, force-fail, re-poll): who, what, when, and the outcome."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target", "target", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    actor_user_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(64))  # e.g. "task:1730621826053455"
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger)
