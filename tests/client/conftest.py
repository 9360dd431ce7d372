"""One real gateway (`mjgate serve` on SQLite) in front of one real simulator for the client's tests,
plus a runner for the `mjgate` client commands as a user types them.

Started once for the package: each test that slows the simulator down puts its knobs back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.live import LiveGateway, _env, cli, start_gateway
from tests.fixtures.simulator import SimulatorProcess, start_simulator_process

SRC_DIR = Path(__file__).resolve().parents[2] / "src"
# The client commands get a database URL that cannot open: a command touching a database would fail.
NO_DATABASE = "sqlite+aiosqlite:////nonexistent-mjgate-client-test/never.db"


@dataclass
class World:
    gateway: LiveGateway
    simulator: SimulatorProcess
    base_url: str
    key: str  # an sk- key of a user with plenty of quota
    broke_key: str  # an sk- key of a user with no quota at all
    server_env: dict  # what the server's own CLI needs (database URL, secret key)

    def slow(self, step_seconds: float, steps: int = 4) -> None:
        self.simulator.configure(step_seconds=step_seconds, steps=steps)


@pytest.fixture(scope="package")
def world(tmp_path_factory):
    sim = start_simulator_process()
    data_dir = tmp_path_factory.mktemp("client-world")
    database_url = f"sqlite+aiosqlite:///{data_dir}/mjgate.db"
    env = _env(database_url, data_dir)
    cli(env, "user", "create", "painter", "--quota", "100000000")
    key = cli(env, "token", "create", "--user", "painter")["key"]
    cli(env, "user", "create", "broke", "--quota", "0")
    broke_key = cli(env, "token", "create", "--user", "broke")["key"]
    cli(env, "channel", "create", "sim", "--base-url", sim.base_url, "--secret", sim.secret)
    # Callbacks to 127.0.0.1 are refused by default (SSRF guard); the webhook test receives them there.
    gateway = start_gateway(database_url, data_dir, MJGATE_WEBHOOK_ALLOW_PRIVATE="true")
    try:
        yield World(gateway, sim, gateway.base_url, key, broke_key, env)
    finally:
        gateway.stop()
        sim.stop()


@pytest.fixture
def sim_knobs(world):
    """Lets a test change the simulator's knobs; they are put back afterwards."""
    yield world.simulator
    world.simulator.configure(**world.simulator.initial_config)


def client_env(world: World, config_home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJGATE_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(SRC_DIR), env.get("PYTHONPATH")])), PYTHONUNBUFFERED="1",
        XDG_CONFIG_HOME=str(config_home), MJGATE_URL=world.base_url, MJGATE_KEY=world.key,
        MJGATE_DATABASE_URL=NO_DATABASE, NO_COLOR="1", COLUMNS="200", TERM="dumb",
    )
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


class Mjgate:
    """`mjgate ...` as a user runs it (python -m mjgate is the console script's own entry)."""

    def __init__(self, env: dict, cwd: Path) -> None:
        self.env = env
        self.cwd = cwd

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mjgate", *args]

    def run(self, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), env={**self.env, **(env or {})}, cwd=self.cwd, capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture
def mjgate(world, tmp_path):
    config_home = tmp_path / "config"
    work = tmp_path / "work"
    work.mkdir()
    return Mjgate(client_env(world, config_home), work)
