"""The client is light: importing it (and starting `mjgate imagine`) loads none of the server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC_DIR = Path(__file__).resolve().parents[2] / "src"
SERVER_PARTS = ("sqlalchemy", "alembic", "fastapi", "mjgate.app", "mjgate.simulator", "mjgate.db", "aiohttp")


def imported_modules(*argv: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC_DIR)}
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    # Lines look like "import time:   123 |   456 |     package.module".
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
            and "|" in line}


@pytest.mark.parametrize("argv", [("-c", "import mjgate.client"), ("-m", "mjgate", "imagine", "--help")],
                         ids=["import mjgate.client", "mjgate imagine --help"])
def test_no_server_parts_are_imported(argv):
    modules = imported_modules(*argv)
    assert "mjgate.client" in modules or "mjgate.client.cli" in modules  # the check looks at the right output
    assert "httpx" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in SERVER_PARTS or m.startswith(SERVER_PARTS))
    assert loaded == []


def test_the_full_cli_lists_the_client_commands():
    env = {**os.environ, "PYTHONPATH": str(SRC_DIR), "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "mjgate", "--help"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    for name in ("serve", "user", "login", "imagine", "action", "describe", "blend", "task", "tasks", "wait",
                 "download", "cancel"):
        assert f" {name} " in done.stdout, name
