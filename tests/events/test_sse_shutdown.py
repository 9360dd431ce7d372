"""An open SSE stream never holds a shutdown: on SIGTERM the stream ends with a comment and the
server exits well before its kill timeout, under granian (the default) and uvicorn."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import httpx
import pytest

from mjgate.serving import WORKER_KILL_TIMEOUT_S
from tests.fixtures.live import cli, start_gateway


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_sigterm_with_an_open_stream_ends_it_and_exits(tmp_path, server):
    gateway = start_gateway(f"sqlite+aiosqlite:///{tmp_path}/mjgate.db", tmp_path, server=server)
    try:
        cli(gateway.env, "user", "create", "watcher", "--quota", "1000")
        key = cli(gateway.env, "token", "create", "--user", "watcher")["key"]
        lines: list[str] = []
        connected = threading.Event()

        def read() -> None:
            try:
                with httpx.stream("GET", gateway.base_url + "/mj/task/events", timeout=None,
                                  headers={"Authorization": f"Bearer {key}"}) as stream:
                    for line in stream.iter_lines():
                        lines.append(line)
                        connected.set()
            except httpx.HTTPError as exc:
                lines.append(f"error: {type(exc).__name__}")

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert connected.wait(20) and ": connected" in lines

        head = httpx.head(gateway.base_url + "/mj/task/events", headers={"Authorization": f"Bearer {key}"},
                          timeout=10)
        assert head.status_code in (200, 405)  # answered, not an endless stream

        started = time.monotonic()
        gateway.proc.send_signal(signal.SIGTERM)
        try:
            gateway.proc.wait(timeout=WORKER_KILL_TIMEOUT_S * 2)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{server} did not exit with an open stream:\n{gateway.log()}")
        took = time.monotonic() - started
        reader.join(10)
        assert ": server shutting down" in lines, lines  # the stream was ended, not cut by a kill
        assert took < WORKER_KILL_TIMEOUT_S / 2, f"{server} needed {took:.1f} s: the stream held the shutdown"
    finally:
        gateway.stop()
