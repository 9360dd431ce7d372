"""The chaos run (bench/chaos.py) at a small size on PostgreSQL: 150 submits through every face, a
faulty upstream, one kill -9 of the gateway's process group; every ledger and task check must hold.

Runs only when MJGATE_TEST_POSTGRES_URL is set (as in CI); it wipes and migrates that database, as
the test fixtures do at the start of a run, so it leaves it migrated and empty for the tests after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get("MJGATE_TEST_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES_URL, reason="MJGATE_TEST_POSTGRES_URL is not set")
def test_small_chaos_run_has_no_violations():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "chaos.py"), "--submits", "150", "--kills", "1",
                           "--db", "postgresql", "--db-url", POSTGRES_URL, "--timeout-s", "30"],
                          capture_output=True, text=True, timeout=900)
    report = done.stdout
    assert "kill -9 of the gateway's process group after" in done.stderr
    assert "| mjproxy_imagine | task created |" in report and "| console_imagine | task created |" in report
    assert "| acedata_imagine | task created |" in report
    assert "\nviolations: 0\n" in report, report + done.stderr[-3000:]
    assert done.returncode == 0, report + done.stderr[-3000:]
