"""`mjgate serve --demo`: the simulator as a demo channel, an admin, a key, all created once.

The first start creates the admin (user `admin`, role root), its password, dashboard access token and
an API key, and writes them to data_dir/demo-credentials.json (mode 0600). Later starts show the same
credentials again and change nothing that still works: no new key per start, the admin's password and
token are kept, and the demo channel keeps its secret (the simulator is started with the secret the
channel already has). Only a credential that no longer works (deleted key, token reset by an
operator, ...) is issued anew and saved.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from mjgate.config import Settings
from mjgate.serving import child_preexec

CREDENTIALS_FILE = "demo-credentials.json"
ADMIN = "admin"
CHANNEL = "demo-simulator"
DEMO_QUOTA = 50_000_000
START_TIMEOUT_S = 15.0


class DemoError(Exception):
    pass


@dataclass
class DemoCredentials:
    user_id: int
    password: str
    access_token: str
    key: str


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / CREDENTIALS_FILE


def load_credentials(path: Path) -> DemoCredentials | None:
    try:
        data = json.loads(path.read_text())
        return DemoCredentials(int(data["user_id"]), str(data["password"]), str(data["access_token"]),
                               str(data["key"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_credentials(path: Path, creds: DemoCredentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(creds), out, indent=2)
    os.chmod(temporary, 0o600)  # whatever the umask was
    os.replace(temporary, path)


def _wait_for_simulator(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"the demo simulator exited with code {proc.returncode} before it answered")
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 (loopback only)
            return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise DemoError(f"the demo simulator did not answer at {url} within {START_TIMEOUT_S:.0f} s")


def start_simulator(port: int, secret: str) -> subprocess.Popen:
    """The simulator as a child that dies with `mjgate serve` (the caller checked the port is free)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mjgate.simulator", "--port", str(port), "--secret", secret,
         "--step-seconds", "1.5", "--steps", "5"],
        preexec_fn=child_preexec(),  # noqa: PLW1509 (only prctl, no locks taken)
    )
    _wait_for_simulator(proc, f"http://127.0.0.1:{port}/__sim/stats")
    return proc


async def demo_channel_secret(session) -> str:
    """The secret the demo channel already has (kept), or a new one."""
    from mjgate.channels.admin import list_channels

    existing = [c for c in await list_channels(session) if c.name == CHANNEL]
    return existing[0].secret if existing and existing[0].secret else "demo-" + secrets.token_hex(8)


async def ensure_demo_world(session, saved: DemoCredentials | None, sim_port: int,
                            sim_secret: str) -> tuple[DemoCredentials, bool]:
    """(credentials, changed): the admin, key and channel exist and the credentials work."""
    from mjgate.accounts.keys import create_key, get_by_secret
    from mjgate.accounts.users import create_user, get_by_access_token, get_by_username, reset_access_token
    from mjgate.auth.credentials import hash_password, verify_password
    from mjgate.billing.ledger import credit
    from mjgate.channels.admin import create_channel, list_channels, update_channel

    admin = await get_by_username(session, ADMIN)
    changed = False
    if admin is None:
        password = secrets.token_urlsafe(9)
        created = await create_user(session, ADMIN, role="root", password=password)
        admin, token = created.user, created.access_token
        await credit(session, admin.id, DEMO_QUOTA, kind="topup", memo="demo quota")
        key = (await create_key(session, admin, name="demo")).secret
        creds, changed = DemoCredentials(admin.id, password, token, key), True
    else:
        creds = saved if saved is not None and saved.user_id == admin.id else DemoCredentials(admin.id, "", "", "")
        if not creds.password or not verify_password(creds.password, admin.password_hash):
            creds.password = secrets.token_urlsafe(9)
            admin.password_hash = hash_password(creds.password)
            changed = True
        holder = await get_by_access_token(session, creds.access_token) if creds.access_token else None
        if holder is None or holder.id != admin.id:
            creds.access_token = await reset_access_token(session, admin)
            changed = True
        key = await get_by_secret(session, creds.key) if creds.key else None
        if key is None or key.user_id != admin.id or key.status != "enabled":
            creds.key = (await create_key(session, admin, name="demo")).secret
            changed = True

    base_url = f"http://127.0.0.1:{sim_port}"
    existing = [c for c in await list_channels(session) if c.name == CHANNEL]
    if not existing:
        await create_channel(session, CHANNEL, base_url, sim_secret)
    elif existing[0].base_url != base_url or existing[0].secret != sim_secret:
        await update_channel(session, existing[0].id, {"base_url": base_url, "secret": sim_secret})
    return creds, changed


def banner(base: str, creds: DemoCredentials, sim_port: int, reused: bool) -> str:
    kept = "  (kept from an earlier start; saved in the data dir's demo-credentials.json)\n" if reused else ""
    return (
        "\nmjgate demo is starting\n" + kept +
        f"  console:       {base}/  (user {ADMIN}, password {creds.password})\n"
        f"  API key:       {creds.key}\n"
        f"  access token:  {creds.access_token}  (New-Api-User: {creds.user_id})\n"
        f"  simulator:     http://127.0.0.1:{sim_port}\n\n"
        "Try:\n"
        f"  curl -s {base}/mj/submit/imagine -H 'Authorization: Bearer {creds.key}' "
        "-H 'Content-Type: application/json' -d '{\"prompt\": \"a red fox in the snow\"}'\n"
        f"  curl -s {base}/api/mj/self -H 'Authorization: Bearer {creds.access_token}' "
        f"-H 'New-Api-User: {creds.user_id}'\n"
    )
