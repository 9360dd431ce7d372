"""A fake midjourney-proxy upstream over real HTTP, for tests, demos and benchmarks (SPEC §7)."""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from .app import create_app
from .config import SimulatorConfig
from .runtime import SIM

__all__ = ["SimulatorConfig", "create_app", "run", "start"]

_WILDCARD_HOSTS = ("", "0.0.0.0", "::")


async def start(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Serve in the running event loop; port 0 picks a free port. Call `runner.cleanup()` to stop."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound_port = runner.addresses[0][1]
    shown_host = "127.0.0.1" if host in _WILDCARD_HOSTS else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    base_url = f"http://{shown_host}:{bound_port}"
    app[SIM].bound_base_url = base_url
    return runner, base_url


def run(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve until SIGINT/SIGTERM. Prints one line with the base URL once it accepts connections."""

    async def serve() -> None:
        runner, base_url = await start(config, host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # not on this platform / thread
                pass
        print(f"mjgate simulator listening on {base_url}", flush=True)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
