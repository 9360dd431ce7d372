"""Schemathesis over the gateway's own /openapi.json, against a real `mjgate serve`: every documented
operation gets generated (valid and invalid) requests, and none may answer a 5xx.

Bounded so it stays a CI test: a fixed seed, a few examples per operation, a time budget per run.
Two runs, because the faces authenticate differently: the relay faces with an API key, the
management, console and admin APIs with an admin's access token.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.live import _env, cli, start_gateway
from tests.fixtures.simulator import start_simulator_process

ST = Path(sys.executable).with_name("st")
RELAY_PATHS = r"^/(mj|mj-fast|mj-relax|mj-turbo|midjourney)/"


def _schemathesis(base_url: str, report: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ST), "run", f"{base_url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "8",
         "--seed", "20261201", "--max-time", "25", "--workers", "1", "--no-shrink", "--request-timeout", "10",
         "--phases", "examples,coverage,fuzzing", "--suppress-health-check", "all", "--warnings", "off",
         "--report", "junit", "--report-junit-path", str(report), *args],
        capture_output=True, text=True, timeout=120)


def _assert_no_server_error(run: subprocess.CompletedProcess, gateway) -> None:
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:] + "\n--- gateway log ---\n" + gateway.log()[-3000:]
    assert "not_a_server_error" not in out.split("SUMMARY", 1)[-1] or "failed" not in out.lower(), out[-3000:]


@pytest.fixture
def served(tmp_path):
    sim = start_simulator_process()
    data_dir = tmp_path / "st"
    data_dir.mkdir()
    database_url = f"sqlite+aiosqlite:///{data_dir}/mjgate.db"
    env = _env(database_url, data_dir)
    admin = cli(env, "user", "create", "boss", "--role", "admin", "--quota", "100000000", "--password", "pw-boss")
    key = cli(env, "token", "create", "--user", "boss")
    cli(env, "channel", "create", "sim", "--base-url", sim.base_url, "--secret", sim.secret)
    gateway = start_gateway(database_url, data_dir)
    try:
        yield gateway, admin, key["key"]
    finally:
        gateway.stop()
        sim.stop()


@pytest.mark.skipif(not ST.exists(), reason="schemathesis is not installed (requirements-test.lock)")
def test_no_server_errors_on_any_documented_operation(served, tmp_path):
    gateway, admin, key = served
    relay = _schemathesis(gateway.base_url, tmp_path / "relay.xml", "--include-path-regex", RELAY_PATHS,
                          "--header", f"Authorization: Bearer {key}")
    _assert_no_server_error(relay, gateway)
    dashboard = _schemathesis(gateway.base_url, tmp_path / "admin.xml", "--exclude-path-regex", RELAY_PATHS,
                              # the SSE stream never ends by itself; tests/events covers it
                              "--exclude-path", "/api/mj/events",
                              "--header", f"Authorization: Bearer {admin['access_token']}",
                              "--header", f"New-Api-User: {admin['id']}")
    _assert_no_server_error(dashboard, gateway)
    # The runs did reach the gateway: its log shows requests of both kinds.
    assert (tmp_path / "relay.xml").stat().st_size > 0 and (tmp_path / "admin.xml").stat().st_size > 0
