"""The `mjgate` command line, run as a real process on a fresh SQLite directory."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from tests.fixtures.live import _env, cli


@pytest.fixture
def env(tmp_path):
    return _env(f"sqlite+aiosqlite:///{tmp_path}/cli.db", tmp_path)


def test_users_keys_and_channels(env, simulator_session):
    user = cli(env, "user", "create", "alice", "--quota", "5000", "--group", "vip", "--password", "pw")
    assert user["username"] == "alice" and user["quota"] == 5000 and user["group"] == "vip"
    assert len(user["access_token"]) == 32
    admin = cli(env, "user", "create", "boss", "--role", "admin")
    assert admin["role"] == "admin"
    assert [u["username"] for u in cli(env, "user", "list")] == ["alice", "boss"]
    assert cli(env, "user", "disable", "alice")["status"] == "disabled"
    assert cli(env, "user", "enable", "alice")["status"] == "enabled"
    assert cli(env, "user", "topup", "alice", "1000")["quota"] == 6000

    key = cli(env, "token", "create", "--user", "alice", "--quota", "300", "--name", "limited")
    assert key["key"].startswith("sk-") and key["unlimited"] is False and key["remain_quota"] == 300
    assert cli(env, "token", "create", "--user", "alice", "--unlimited")["unlimited"] is True
    listed = cli(env, "token", "list", "--user", "alice")
    assert len(listed) == 2 and all("key" not in k for k in listed)  # secrets are shown once only
    assert cli(env, "token", "disable", str(key["id"]))["status"] == "disabled"

    channel = cli(env, "channel", "create", "sim", "--base-url", simulator_session.base_url, "--secret",
                  simulator_session.secret, "--priority", "5", "--weight", "3", "--groups", "default,vip",
                  "--modes", "fast,relax")
    assert channel["groups"] == ["default", "vip"] and channel["modes"] == ["fast", "relax"]
    assert "secret" not in channel and channel["priority"] == 5
    tested = cli(env, "channel", "test", str(channel["id"]))
    assert tested["ok"] is True and tested["channel"]["health"]["success_count"] == 1
    assert cli(env, "channel", "disable", str(channel["id"]))["status"] == "manual_disabled"


def test_errors_are_clear_and_nonzero(env):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "mjgate.cli", *args], env=env, capture_output=True, text=True)

    cli(env, "user", "create", "alice")
    dup = run("user", "create", "alice", "--json")
    assert dup.returncode == 1 and "already exists" in dup.stdout + dup.stderr
    bad = run("channel", "create", "x", "--base-url", "not-a-url", "--json")
    assert bad.returncode == 1 and "base_url" in bad.stdout + bad.stderr
    down = run("channel", "create", "dead", "--base-url", "http://127.0.0.1:9", "--json")
    assert down.returncode == 0
    test = run("channel", "test", "1", "--json")
    assert test.returncode == 1 and '"ok": false' in test.stdout
    assert run("token", "create", "--user", "nobody", "--json").returncode == 1


def test_webhook_secret_is_shown_and_rotated(env):
    cli(env, "user", "create", "alice")
    shown = cli(env, "user", "webhook-secret", "alice")
    assert set(shown) == {"secret"} and shown["secret"].startswith("whsec_")
    assert base64.b64decode(shown["secret"][len("whsec_"):])  # a base64 key, as Standard Webhooks wants
    assert cli(env, "user", "webhook-secret", "alice") == shown  # stable until rotated
    rotated = cli(env, "user", "webhook-secret", "alice", "--rotate")
    assert rotated["secret"].startswith("whsec_") and rotated != shown
    assert cli(env, "user", "webhook-secret", "alice") == rotated
    missing = subprocess.run([sys.executable, "-m", "mjgate.cli", "user", "webhook-secret", "nobody", "--json"],
                             env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "nobody" in missing.stdout + missing.stderr


def test_duplicate_channel_names_are_refused(env):
    cli(env, "channel", "create", "main", "--base-url", "http://127.0.0.1:9")
    dup = subprocess.run([sys.executable, "-m", "mjgate.cli", "channel", "create", "Main", "--base-url",
                          "http://127.0.0.1:8", "--json"], env=env, capture_output=True, text=True)
    assert dup.returncode == 1 and "already exists" in dup.stdout + dup.stderr
