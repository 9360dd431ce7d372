"""A task row as the core handles it: a plain object with one attribute per column.

Built straight from a Core row, it costs a few microseconds where an ORM instance costs a hundred
(attribute instrumentation), and it is not tied to a session. The ORM model (models/task.py)
stays the table's definition and what tests and cold paths may query with.
"""

from __future__ import annotations

from dataclasses import make_dataclass

from mjgate.models import Task
from mjgate.models.task import TERMINAL_STATUSES

COLUMNS = tuple(Task.__table__.columns)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)

TaskRecord = make_dataclass(
    "TaskRecord", [(name, object, None) for name in COLUMN_NAMES], slots=True,
    namespace={"terminal": property(lambda self: self.status in TERMINAL_STATUSES),
               "__doc__": "One task (all columns); `terminal` when it can no longer change."},
)


def from_row(row) -> TaskRecord:
    return TaskRecord(*row)
