"""How `mjgate serve` runs its HTTP server: one listening socket bound up front, workers tied to their master.

- The socket is bound here, before anything is seeded or started, without SO_REUSEPORT (unless the
  operator asks for it with --reuse-port). Granian's own listener sets SO_REUSEPORT on every
  worker's socket, so a second `mjgate serve` on the same port would bind too and the kernel would
  share connections between two unrelated gateways; with one socket of ours, a busy port is a clear
  error (PortInUse) instead. Granian's workers (forked) and uvicorn both serve from that socket.
- Both servers call server_exit.notify() when they begin to shut down, so open SSE streams end
  instead of holding the shutdown (see server_exit.py).
- Every worker asks the kernel for SIGTERM when its master dies (PR_SET_PDEATHSIG), so `kill -9` of
  the master does not leave a worker serving; a watchdog thread hard-exits a worker whose graceful
  shutdown does not finish in time once it is orphaned.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

MASTER_PID_ENV = "MJGATE_SERVE_MASTER_PID"
ORPHAN_GRACE_S = 15.0  # an orphaned worker's graceful shutdown gets this long before it is ended
WORKER_KILL_TIMEOUT_S = 20  # the master's wait for a worker on shutdown before it kills it
_PR_SET_PDEATHSIG = 1

# What several processes cost without Redis: each keeps its own copy of these.
WORKERS_WITHOUT_REDIS_COST = (
    "rate limits are counted per process (a key may send N times its limit)",
    "live events (SSE) only carry changes made in the same process",
    "/metrics answers for whichever process the scrape reaches",
    "the authenticated-key cache is per process",
)


class PortInUse(Exception):
    pass


def bind_listener(host: str, port: int, *, reuse_port: bool = False, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on host:port, or PortInUse naming the address."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        # SO_REUSEADDR only lets a restart bind over connections still in TIME_WAIT; on Linux it
        # never lets two sockets listen on one port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else "may not be used by this user"
            raise PortInUse(f"{host}:{port} {reason} (another mjgate or another program listens there? "
                            f"`ss -ltnp 'sport = :{port}'` shows it); choose another --port") from None
        raise
    sock.set_inheritable(True)
    return sock


def port_is_free(host: str, port: int) -> bool:
    try:
        bind_listener(host, port).close()
    except PortInUse:
        return False
    return True


# ----------------------------------------------------------------------------- workers die with the master

def die_with_parent(expected_parent: int | None = None) -> None:
    """In a child: SIGTERM when the parent exits, however it exits (Linux; elsewhere a no-op).

    If the parent is already gone (it died before this ran), exit now.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(1)


def _orphan_watchdog(master: int) -> None:
    while os.getppid() == master:
        time.sleep(0.5)
    # PDEATHSIG has started the graceful shutdown; make sure it ends.
    time.sleep(ORPHAN_GRACE_S)
    os._exit(1)


def _hook_granian_exit_signal() -> None:
    """Make the worker's SIGINT/SIGTERM call server_exit.notify() before granian's own handling.

    Granian's worker registers its handlers through granian._signals.set_loop_signals (looked up
    when the worker starts, after this factory ran): each handler only sets the WorkerSignal that
    function returns. The wrapper re-registers the same signals with a handler that notifies us
    first, then sets that WorkerSignal.
    """
    import granian._signals as granian_signals

    from mjgate import server_exit

    original = granian_signals.set_loop_signals

    def set_loop_signals(loop):
        signal_event = original(loop)

        def handler(*_args) -> None:
            server_exit.notify()
            signal_event.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, handler)
        return signal_event

    granian_signals.set_loop_signals = set_loop_signals


def worker_app() -> Any:
    """Granian's factory target: runs in each worker before the app is built."""
    master = int(os.environ.get(MASTER_PID_ENV) or 0) or None
    die_with_parent(master)
    if master is not None:
        threading.Thread(target=_orphan_watchdog, args=(master,), name="mjgate-orphan-watchdog",
                         daemon=True).start()
    _hook_granian_exit_signal()
    from mjgate.app import create_app

    return create_app()


def _preexec_die_with_parent() -> None:
    die_with_parent()


def child_preexec() -> Callable[[], None] | None:
    """preexec_fn for subprocesses that must not outlive `mjgate serve` (the demo simulator)."""
    return _preexec_die_with_parent if sys.platform.startswith("linux") else None


# ----------------------------------------------------------------------------- servers

def run_granian(listener: socket.socket, *, workers: int) -> None:
    import multiprocessing

    from granian._granian import SocketHolder
    from granian.server.mp import MPServer

    class PreboundGranian(MPServer):
        """Granian serving from our socket: workers inherit it by fork instead of binding their own."""

        def _init_shared_socket(self):
            self._ssp = None
            self._shd = SocketHolder(listener.fileno(), False, self.backlog)
            self._sfd = listener.fileno()
            self._sso = listener

        def _drop_shared_socket(self):
            listener.close()

    if multiprocessing.get_start_method() != "fork":
        # The workers inherit the socket by fork (3.14 defaults to forkserver, which granian runs as spawn).
        multiprocessing.set_start_method("fork", force=True)
    os.environ[MASTER_PID_ENV] = str(os.getpid())
    host, port = listener.getsockname()[:2]
    PreboundGranian("mjgate.serving:worker_app", factory=True, interface="asgi", address=host, port=port,
                    workers=workers, log_access=False, workers_kill_timeout=WORKER_KILL_TIMEOUT_S).serve()


def run_uvicorn(listener: socket.socket) -> None:
    import uvicorn

    from mjgate import server_exit

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            server_exit.notify()
            super().handle_exit(sig, frame)

    config = uvicorn.Config("mjgate.app:create_app", factory=True, log_level="warning",
                            timeout_graceful_shutdown=WORKER_KILL_TIMEOUT_S)
    Server(config).run(sockets=[listener])
