"""AceData's official CLI (`midjourney-pro-cli` from PyPI), unchanged, against a live `mjgate serve`.

The CLI reads only ACEDATACLOUD_API_BASE_URL / ACEDATACLOUD_API_TOKEN (or `--token` before the
subcommand) and POSTs JSON to /midjourney/...; `wait` polls retrieve until the top-level `success`
and `image_url` are set.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

PNG_DATA_URI = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKm"
                "MIQAAAABJRU5ErkJggg==")

if importlib.util.find_spec("midjourney_cli") is None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("midjourney-pro-cli must be installed in CI (requirements-test.lock)", pytrace=False)
    pytest.skip("midjourney-pro-cli is not installed", allow_module_level=True)


class Cli:
    def __init__(self, base_url: str, token: str):
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("ACEDATACLOUD_", "MIDJOURNEY_"))}
        self.env.update(ACEDATACLOUD_API_BASE_URL=base_url, ACEDATACLOUD_API_TOKEN=token,
                        MIDJOURNEY_REQUEST_TIMEOUT="60", NO_COLOR="1", COLUMNS="200", TERM="dumb")

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "midjourney_cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=120)
        if ok:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def json(self, *args: str) -> dict:
        return json.loads(self.run(*args, "--json").stdout)


def test_acedata_cli_against_the_live_gateway(live_world):
    cli = Cli(live_world["base_url"], live_world["key"])

    # imagine: the CLI always asks for async and expects the task and trace ids at once.
    answer = cli.json("imagine", "a red fox in snow", "--version", "6.1")
    assert answer["success"] is True and answer["task_id"] and answer["trace_id"]
    task_id = answer["task_id"]

    # wait: polls retrieve; done once the top-level success and image_url are there.
    done = cli.json("wait", task_id, "--interval", "1", "--timeout", "60")
    assert done["success"] is True and done["image_url"].startswith(live_world["base_url"] + "/mj/image/")
    assert done["id"] == task_id and done["type"] == "imagine"
    assert done["response"]["success"] is True and "upscale1" in done["response"]["actions"]
    assert done["request"]["prompt"] == "a red fox in snow" and done["request"]["version"] == "6.1"

    # task: retrieve by id and by trace id; the rich view finds the image at the top level.
    got = cli.json("task", task_id)
    assert got["id"] == task_id and got["response"]["image_url"] == got["image_url"]
    assert cli.json("task", "--trace-id", answer["trace_id"])["id"] == task_id
    rich = cli.run("task", task_id).stdout
    assert "Image Url" in rich and task_id in rich and "No data available" not in rich

    # transform: a follow-up on the image, then wait for it.
    up = cli.json("transform", done["image_id"], "upscale2")
    assert up["success"] is True and up["task_id"] != task_id
    upscaled = cli.json("wait", up["task_id"], "--interval", "1", "--timeout", "60")
    assert "variation_region" in upscaled["actions"]

    # tasks: a batch, unknown ids skipped.
    batch = cli.json("tasks", task_id, up["task_id"], "0000000000000000", "--limit", "5")
    assert batch["count"] == 2 and [i["id"] for i in batch["items"]] == [task_id, up["task_id"]]
    assert all(i["response"]["success"] is True for i in batch["items"])
    rich_batch = cli.run("tasks", task_id, up["task_id"]).stdout
    assert task_id in rich_batch and "imagine" in rich_batch

    # describe: synchronous, four prompts.
    described = cli.json("describe", PNG_DATA_URI)
    assert described["success"] is True and len(described["descriptions"]) == 4

    # Errors: a bad token, an unknown task, an unknown action of a real image.
    bad = cli.run("--token", "sk-not-a-real-key", "task", task_id, ok=False)
    assert bad.returncode == 1 and "Invalid API token" in bad.stdout + bad.stderr
    missing = cli.run("task", "0000000000000000", ok=False)
    assert missing.returncode == 1 and "not_found" in missing.stdout + missing.stderr
    refused = cli.run("transform", up["task_id"], "upscale1", ok=False)
    assert refused.returncode == 1 and "not available" in refused.stdout + refused.stderr


def test_acedata_cli_reuses_the_gateways_own_image_urls_on_a_private_address(live_world):
    """The gateway listens on 127.0.0.1: its own image URLs are private addresses, yet describe, edit
    and video of an earlier task's image_url work (read internally, never downloaded)."""
    base = live_world["base_url"]
    assert base.startswith("http://127.0.0.1:")
    cli = Cli(base, live_world["key"])
    task_id = cli.json("imagine", "a lighthouse at dusk")["task_id"]
    image_url = cli.json("wait", task_id, "--interval", "1", "--timeout", "60")["image_url"]
    assert image_url.startswith(base + "/mj/image/")

    described = cli.json("describe", image_url)
    assert described["success"] is True and len(described["descriptions"]) == 4

    edited = cli.json("edit", image_url, "add a full moon")
    assert edited["success"] is True and edited["task_id"]
    done = cli.json("wait", edited["task_id"], "--interval", "1", "--timeout", "60")
    assert done["success"] is True and done["type"] == "edits" and done["image_url"].startswith(base)

    # Anything else on a private address keeps the public-address rule.
    other = cli.run("describe", base.replace("127.0.0.1", "localhost") + "/cat.png", ok=False)
    assert other.returncode == 1 and "not a public address" in other.stdout + other.stderr
