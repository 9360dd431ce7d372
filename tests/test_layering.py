"""The shape the code keeps: SQL only in repositories, no dialect inside the core.

Read from the source text, so the check covers every module whether or not a test imports it.
"""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mjgate"
# Infrastructure that may speak SQL: the engine and unit of work, migrations, the table definitions.
SQL_ALLOWED = ("db/", "migrations/", "models/")
CORE = ("tasks/", "billing/", "channels/", "upstream/", "poller/", "webhooks/", "accounts/", "audit/", "db/",
        "models/", "reference.py", "invalidation.py")

SQL_IMPORT = re.compile(r"^from sqlalchemy(?:\.\w+)* import (?P<names>.+)$", re.M)
SQL_NAMES = {"select", "update", "insert", "delete", "text", "func", "case", "and_", "or_", "exists"}
SESSION_SQL = re.compile(r"\b(?:session|conn|connection)\.(?:execute|scalar|scalars|get|add|add_all|delete|flush|refresh|merge|exec_driver_sql)\(")


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(("simulator/", "client/")):  # separate programs, with no database of the gateway's
            continue
        yield rel, path.read_text()


def _is_repository(rel: str) -> bool:
    return rel.endswith("repository.py") or rel.startswith(SQL_ALLOWED)


def test_sql_lives_in_repositories_only():
    offenders = []
    for rel, text in _modules():
        if _is_repository(rel):
            continue
        for match in SQL_IMPORT.finditer(text):
            names = {n.strip(" ()").split(" as ")[0] for n in match["names"].split(",")}
            if names & SQL_NAMES:
                offenders.append(f"{rel}: imports {sorted(names & SQL_NAMES)} from sqlalchemy")
        offenders += [f"{rel}: {m.group(0)}" for m in SESSION_SQL.finditer(text)]
    assert not offenders, "\n".join(offenders)


def test_the_core_imports_no_dialect():
    offenders = [f"{rel}: {m.group(0)}" for rel, text in _modules() if rel.startswith(CORE)
                 for m in re.finditer(r"^\s*(?:from|import) mjgate\.(?:dialects|api|web|app)\b.*$", text, re.M)]
    assert not offenders, "\n".join(offenders)


def test_the_check_sees_sql_where_it_is():
    # A check that could not fail would prove nothing: the repositories do hold SQL.
    found = [rel for rel, text in _modules() if _is_repository(rel) and SESSION_SQL.search(text)]
    assert "tasks/repository.py" in found and "billing/repository.py" in found
