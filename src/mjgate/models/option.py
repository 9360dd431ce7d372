from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from mjgate.db.base import Base


class Option(Base):
    """Admin-editable settings kept in the database (prices, ratios): key -> JSON value."""

    __tablename__ = "options"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[dict | list | int | float | str | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[int] = mapped_column(BigInteger)
