from mjgate.db.base import Base
from mjgate.db.engine import Database, normalize_url

__all__ = ["Base", "Database", "normalize_url"]
