from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mjgate.db.base import Base, BigId

# charge: a task's price reserved; release: a charge given back because the upstream refused
# the job; refund: a charge given back because the task failed; reprice: the part of a charge
# given back when a fast task ran as relax (mode fallback); topup / adjust: by an admin.
LEDGER_KINDS = ("charge", "release", "refund", "reprice", "topup", "adjust")


class LedgerEntry(Base):
    """Append-only record of every quota movement. amount > 0 credits the user, < 0 debits."""

    __tablename__ = "quota_ledger"
    __table_args__ = (
        # A task is charged at most once and given back at most once: the database itself
        # refuses a second refund, whatever the code above it does.
        UniqueConstraint("task_id", "kind"),
        Index("ix_quota_ledger_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    memo: Mapped[str] = mapped_column(String(512), default="")
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
