from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mjgate.db.base import Base, BigId


class BannedWord(Base):
    """One operator-banned word or phrase, in a group (a category the operator names, such as "gore")."""

    __tablename__ = "banned_words"
    __table_args__ = (UniqueConstraint("group_name", "word"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_name: Mapped[str] = mapped_column(String(64))
    word: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)


class ModerationHit(Base):
    """A prompt refused for a banned word, by the gateway (source "gateway") or by the upstream ("upstream")."""

    __tablename__ = "moderation_hits"
    __table_args__ = (Index("ix_moderation_hits_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    word: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))
    task_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # no FK: retention may remove the task
    created_at: Mapped[int] = mapped_column(BigInteger)


class UserBlock(Base):
    """A user blocked from submitting after too many hits; active while until > now and not lifted."""

    __tablename__ = "user_blocks"
    __table_args__ = (Index("ix_user_blocks_user_until", "user_id", "until"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    hits: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)
    until: Mapped[int] = mapped_column(BigInteger)
    lifted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lifted_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
