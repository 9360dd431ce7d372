"""Small things of the command line: --version, the simulator's own --help, whole tables when not on
a terminal, and which database the CLI uses when it is run from another directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mjgate import __version__

SRC_DIR = Path(__file__).resolve().parents[2] / "src"


def _run(*args: str, cwd: Path, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJGATE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC_DIR), env.get("PYTHONPATH")]))
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "mjgate.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def test_version(tmp_path):
    done = _run("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"mjgate {__version__}"
    assert not (tmp_path / "data").exists()  # no database for that


def test_simulator_help_lists_its_options(tmp_path):
    done = _run("simulator", "--help", cwd=tmp_path)
    assert done.returncode == 0
    for option in ("--port", "--secret", "--failure-rate", "--error-rate", "--malformed-rate", "--slow-seconds",
                   "--forget-rate", "--step-seconds", "--notify"):
        assert option in done.stdout
    assert done.stdout.startswith("usage: mjgate simulator")


def test_tables_are_whole_when_stdout_is_not_a_terminal(tmp_path):
    done = _run("settings", cwd=tmp_path)
    assert done.returncode == 0
    # One line carries the whole description (80 columns would have wrapped or cut it).
    assert any("MJGATE_WEBHOOK_ALLOW_PRIVATE" in line and "could aim them at the gateway's network" in line
               for line in done.stdout.splitlines())


def test_cli_says_which_database_it_creates_and_uses(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = _run("user", "list", "--json", cwd=elsewhere)
    database = (elsewhere / "data" / "mjgate.db").resolve()
    assert first.returncode == 0 and json.loads(first.stdout) == []
    assert f"created a new, empty database at {database}" in first.stderr
    again = _run("user", "list", cwd=elsewhere)
    assert "created a new" not in again.stderr  # only the first time
    assert f"(none, in SQLite {database})" in again.stderr

    # The database lives in MJGATE_DATA_DIR, as the secret key and the images do.
    home = tmp_path / "home"
    created = _run("user", "create", "alice", "--json", cwd=elsewhere, MJGATE_DATA_DIR=str(home))
    assert created.returncode == 0, created.stderr
    assert (home / "mjgate.db").exists() and str((home / "mjgate.db").resolve()) in created.stderr
    listed = _run("user", "list", "--json", cwd=tmp_path, MJGATE_DATA_DIR=str(home))
    assert [u["username"] for u in json.loads(listed.stdout)] == ["alice"]
