"""The README's first steps, as a newcomer takes them: `mjgate serve --demo` prints a ready-to-paste
`mjgate login ... && mjgate imagine "a red fox" --wait` line, and that line makes a picture."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time

import httpx

from tests.client.conftest import SRC_DIR
from tests.fixtures.live import free_port


def test_demo_banner_login_line_then_imagine(tmp_path):
    port, sim_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJGATE_")}
    env.update(PYTHONPATH=str(SRC_DIR), PYTHONUNBUFFERED="1", MJGATE_DATA_DIR=str(tmp_path / "data"),
               MJGATE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    log_path = tmp_path / "serve.log"
    leftover: list[int] = []
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "mjgate", "serve", "--demo", "--port", str(port),
                                   "--demo-port", str(sim_port), "--server", "uvicorn"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        line = None
        while time.monotonic() < deadline:
            assert server.poll() is None, log_path.read_text()
            found = re.search(r"^\s*(mjgate login --url \S+ --key sk-\S+\s+&&\s+mjgate imagine .*)$",
                              log_path.read_text(), re.M)
            up = False
            try:
                up = httpx.get(base + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                pass
            if found and up:
                line = found.group(1)
                break
            time.sleep(0.2)
        assert line, log_path.read_text()
        assert f"--url {base} " in line and line.endswith('mjgate imagine "a red fox" --wait')

        login, imagine = (shlex.split(part) for part in line.split("&&"))
        client_env = {**env, "XDG_CONFIG_HOME": str(tmp_path / "config"),
                      "MJGATE_DATABASE_URL": "sqlite+aiosqlite:////nonexistent-mjgate/never.db"}
        for argv in (login, imagine + ["--out", "fox.png"]):
            done = subprocess.run([sys.executable, "-m", *argv], env=client_env, cwd=tmp_path, capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 0, (argv, done.stdout, done.stderr)
        assert (tmp_path / "fox.png").read_bytes().startswith(b"\x89PNG")
        assert "saved fox.png" in done.stdout
    finally:
        # Ctrl-C, as a person stops the demo (it also stops the demo's simulator).
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        leftover = _processes_with(f"--port\0{sim_port}\0")
        for pid in leftover:  # never leave a simulator behind, whatever happened above
            os.kill(pid, signal.SIGKILL)
    assert leftover == [], "serve --demo left its simulator running after Ctrl-C"


def _processes_with(fragment: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline") as handle:
                    if fragment in handle.read() and int(entry) != os.getpid():
                        found.append(int(entry))
            except OSError:
                continue
    return found
