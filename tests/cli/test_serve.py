"""`mjgate serve` as a real process: a busy port is refused before anything starts, workers die with
their master, several workers without Redis say what that costs, and the demo is idempotent."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.live import _env, free_port

START_TIMEOUT_S = 40


def _serve(env: dict, port: int, *args: str, log: Path) -> subprocess.Popen:
    out = open(log, "w")
    return subprocess.Popen([sys.executable, "-m", "mjgate.cli", "serve", "--port", str(port), *args],
                            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_healthy(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"serve did not come up:\n{log.read_text()}")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _can_bind_with_reuse_port(port: int) -> bool:
    """What a second SO_REUSEPORT listener (granian's own) would get: it succeeds only if every
    socket already on the port has SO_REUSEPORT too."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def home(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    return _env(f"sqlite+aiosqlite:///{data}/mjgate.db", data, MJGATE_SECRET_KEY="")


def test_busy_port_is_refused_before_anything_starts(home, tmp_path):
    port = free_port()
    first = _serve(home, port, log=tmp_path / "first.log")
    try:
        _wait_healthy(first, port, tmp_path / "first.log")
        assert not _can_bind_with_reuse_port(port)  # no SO_REUSEPORT on the gateway's socket

        other = tmp_path / "other"
        other.mkdir()
        env = _env(f"sqlite+aiosqlite:///{other}/mjgate.db", other, MJGATE_SECRET_KEY="")
        second = subprocess.run([sys.executable, "-m", "mjgate.cli", "serve", "--port", str(port)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"127.0.0.1:{port} is already in use" in second.stderr
        assert "Listening" not in second.stdout + second.stderr and "Traceback" not in second.stderr
        assert list(other.iterdir()) == []  # nothing migrated, no secret written, no database created

        listeners = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
        pids = {int(p.split("=")[1]) for p in listeners.replace(",", " ").split() if p.startswith("pid=")}
        assert pids and pids <= {first.pid, *_children(first.pid)}
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200  # the first one is untouched

        # --reuse-port is the one way to share a port, and only with another --reuse-port.
        third = subprocess.run([sys.executable, "-m", "mjgate.cli", "serve", "--port", str(port), "--reuse-port"],
                               env=env, capture_output=True, text=True, timeout=60)
        assert third.returncode == 1 and "already in use" in third.stderr
    finally:
        _stop_group(first)


def test_kill_9_of_the_master_takes_its_workers_along(home, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    master = _serve(home, port, "--workers", "2", log=log)
    try:
        _wait_healthy(master, port, log)
        assert "2 workers without MJGATE_REDIS_URL" in log.read_text()
        assert "rate limits are counted per process" in log.read_text()
        workers = _children(master.pid)
        assert len(workers) == 2
        # Both workers serving (not one still starting: a kill during startup is another case).
        deadline = time.monotonic() + 30
        while not all(f"Started worker-{n}" in log.read_text() for n in (1, 2)) and time.monotonic() < deadline:
            time.sleep(0.1)
        master.send_signal(signal.SIGKILL)  # the master alone, not its process group
        master.wait()
        deadline = time.monotonic() + 30
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "a worker outlived its master"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        assert _can_bind_with_reuse_port(port)  # nobody listens any more
    finally:
        _stop_group(master)


def _banner_credentials(log: Path) -> dict:
    text = log.read_text()
    password = text.split("password ", 1)[1].split(")", 1)[0]
    key = text.split("API key:", 1)[1].split()[0]
    token = text.split("access token:", 1)[1].split()[0]
    return {"password": password, "key": key, "access_token": token}


def _admin_works(base: str, creds: dict) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        login = http.post("/api/console/login", json={"username": "admin", "password": creds["password"]})
        assert login.status_code == 200, login.text
        own = http.get("/api/mj/self", headers={"Authorization": f"Bearer {creds['access_token']}",
                                               "New-Api-User": "1"})
        assert own.status_code == 200, own.text
        submitted = http.post("/mj/submit/imagine", json={"prompt": "demo fox"},
                              headers={"Authorization": f"Bearer {creds['key']}"})
        assert submitted.json()["code"] == 1, submitted.text


def test_demo_is_idempotent_and_a_second_demo_changes_nothing(home, tmp_path):
    port, sim_port = free_port(), free_port()
    data = Path(home["MJGATE_DATA_DIR"])
    log = tmp_path / "demo1.log"
    demo = _serve(home, port, "--demo", "--demo-port", str(sim_port), log=log)
    try:
        _wait_healthy(demo, port, log)
        first = _banner_credentials(log)
        saved = data / "demo-credentials.json"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert json.loads(saved.read_text())["key"] == first["key"]
        _admin_works(f"http://127.0.0.1:{port}", first)
        channels = subprocess.run([sys.executable, "-m", "mjgate.cli", "channel", "list", "--json"], env=home,
                                  capture_output=True, text=True, check=True)
        assert len(json.loads(channels.stdout)) == 1

        # A second demo beside the running one: refused on the busy port, nothing seeded or started.
        second = subprocess.run([sys.executable, "-m", "mjgate.cli", "serve", "--port", str(port), "--demo",
                                 "--demo-port", str(sim_port)], env=home, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "already in use" in second.stderr
        assert "Listening" not in second.stdout + second.stderr and "Traceback" not in second.stderr
        assert "demo is starting" not in second.stdout
        # The same with another gateway port: the simulator's port is checked before anything is seeded.
        third = subprocess.run([sys.executable, "-m", "mjgate.cli", "serve", "--port", str(free_port()), "--demo",
                                "--demo-port", str(sim_port)], env=home, capture_output=True, text=True, timeout=60)
        assert third.returncode == 1 and "simulator's port" in third.stderr and "Traceback" not in third.stderr
        _admin_works(f"http://127.0.0.1:{port}", first)  # the running demo's channel secret is intact
    finally:
        _stop_group(demo)

    log2 = tmp_path / "demo2.log"
    again = _serve(home, port, "--demo", "--demo-port", str(sim_port), log=log2)
    try:
        _wait_healthy(again, port, log2)
        assert _banner_credentials(log2) == first  # shown again, not rotated
        assert "kept from an earlier start" in log2.read_text()
        _admin_works(f"http://127.0.0.1:{port}", first)
        keys = subprocess.run([sys.executable, "-m", "mjgate.cli", "token", "list", "--json"], env=home,
                              capture_output=True, text=True, check=True)
        assert len(json.loads(keys.stdout)) == 1  # no new demo key per start
    finally:
        _stop_group(again)
