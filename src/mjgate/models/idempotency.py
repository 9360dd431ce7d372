from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mjgate.db.base import Base, BigId


class IdempotencyKey(Base):
    """A client's Idempotency-Key, bound to the task its first request made (tasks/idempotency.py).

    The unique (user_id, key) is what makes concurrent duplicates safe: the row is inserted in the
    transaction that reserves the price and inserts the task, so only one of them can commit.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    # sha256 of the route and the canonical JSON of the body: a reuse with another body is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
