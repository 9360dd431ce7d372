"""The client commands of `mjgate`, each in --json mode, against a live gateway and simulator.

--json prints exactly one JSON document on stdout; these tests pin its keys (docs/client.md).
"""

from __future__ import annotations

import json
import stat

from PIL import Image

from mjgate.client import Client

TASK_KEYS = {"id", "action", "status", "progress", "prompt", "image_url", "fail_reason", "submit_time",
             "finish_time", "buttons"}
SUBMIT_KEYS = {"id", "code", "description"}
GRID_BUTTONS = ["U1", "U2", "U3", "U4", "reroll", "V1", "V2", "V3", "V4"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def document(done):
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout)  # one document: json.loads refuses anything after it


def png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


def grid_task(world, prompt="a grid to work on"):
    with Client(world.base_url, world.key) as client:
        return client.imagine(prompt)


def test_login_stores_url_and_key_privately(mjgate, world):
    env = {"MJGATE_URL": "", "MJGATE_KEY": ""}
    doc = document(mjgate.run("login", "--url", world.base_url + "/", "--key", world.key, "--json", env=env))
    assert set(doc) == {"url", "auth", "config_path"}
    assert doc["url"] == world.base_url and doc["auth"] == "bearer"
    config = mjgate.env["XDG_CONFIG_HOME"] + "/mjgate/client.toml"
    assert doc["config_path"] == config
    mode = stat.S_IMODE((mjgate.cwd.parent / "config" / "mjgate" / "client.toml").stat().st_mode)
    assert mode == 0o600
    # Without MJGATE_URL / MJGATE_KEY the commands now use the stored login.
    listed = document(mjgate.run("tasks", "--json", env=env))
    assert isinstance(listed, list)


def test_login_refuses_a_bad_key_and_saves_nothing(mjgate, world):
    env = {"MJGATE_URL": "", "MJGATE_KEY": ""}
    done = mjgate.run("login", "--url", world.base_url, "--key", "sk-not-a-real-key", env=env)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: invalid API key (HTTP 401)"
    assert not (mjgate.cwd.parent / "config" / "mjgate" / "client.toml").exists()


def test_imagine_without_wait_answers_the_submission(mjgate):
    doc = document(mjgate.run("imagine", "a red fox", "--json"))
    assert set(doc) == SUBMIT_KEYS
    assert doc["code"] == 1 and doc["id"].isdigit()


def test_imagine_wait_out_writes_a_real_png(mjgate):
    done = mjgate.run("imagine", "a red fox", "--wait", "--out", "fox.png", "--json")
    doc = document(done)
    assert set(doc) == TASK_KEYS | {"files"}
    assert doc["status"] == "SUCCESS" and doc["progress"] == "100%" and doc["action"] == "IMAGINE"
    assert doc["buttons"] == GRID_BUTTONS and doc["files"] == ["fox.png"]
    width, height = png(mjgate.cwd / "fox.png")
    assert width == height and width > 0
    assert "100%" in done.stderr  # progress goes to stderr, never into the JSON


def test_imagine_wait_defaults_to_task_id_png_and_split_writes_four(mjgate):
    doc = document(mjgate.run("imagine", "a red fox", "--wait", "--json"))
    assert doc["files"] == [f"{doc['id']}.png"]
    full = png(mjgate.cwd / f"{doc['id']}.png")
    split = document(mjgate.run("imagine", "four foxes", "--split", "--json"))  # --split implies waiting
    assert split["files"] == [f"{split['id']}-{i}.png" for i in range(1, 5)]
    sizes = {png(mjgate.cwd / name) for name in split["files"]}
    assert sizes == {(full[0] // 2, full[1] // 2)}


def test_imagine_with_a_reference_file_and_mode(mjgate, world):
    grid = grid_task(world)
    with Client(world.base_url, world.key) as client:
        client.download(grid, mjgate.cwd / "ref.png")
    doc = document(mjgate.run("imagine", "like this", "--image", "ref.png", "--mode", "relax", "--wait", "--json"))
    assert doc["status"] == "SUCCESS"
    with Client(world.base_url, world.key) as client:
        assert client.fetch(doc["id"]).mode == "RELAX"


def test_action_upscale_and_zoom(mjgate, world):
    grid = grid_task(world)
    up = document(mjgate.run("action", grid.id, "U2", "--wait", "--out", "u2.png", "--json"))
    assert set(up) == TASK_KEYS | {"files"}
    assert up["action"] == "UPSCALE" and up["status"] == "SUCCESS" and up["files"] == ["u2.png"]
    assert "zoom-out-2x" in up["buttons"] and "upscale-subtle" in up["buttons"]
    png(mjgate.cwd / "u2.png")
    zoom = document(mjgate.run("action", up["id"], "zoom-out-2x", "--json"))
    assert set(zoom) == SUBMIT_KEYS and zoom["code"] == 1
    with Client(world.base_url, world.key) as client:
        assert client.wait(zoom["id"]).action == "ZOOM"


def test_describe_prints_four_prompts(mjgate, world):
    grid = grid_task(world)
    with Client(world.base_url, world.key) as client:
        client.download(grid, mjgate.cwd / "in.png")
    doc = document(mjgate.run("describe", "in.png", "--wait", "--json"))
    assert set(doc) == TASK_KEYS | {"files", "descriptions"}
    assert doc["action"] == "DESCRIBE" and len(doc["descriptions"]) == 4 and doc["files"] == []
    assert all(d and not d[0].isdigit() for d in doc["descriptions"])  # the keycap numbering is gone
    submitted = document(mjgate.run("describe", "in.png", "--json"))
    assert set(submitted) == SUBMIT_KEYS


def test_blend_two_images(mjgate, world):
    grid = grid_task(world)
    with Client(world.base_url, world.key) as client:
        a, b = client.download(grid, mjgate.cwd / "ab.png", split=True)[:2]
    doc = document(mjgate.run("blend", a.name, b.name, "--dimensions", "LANDSCAPE", "--wait", "--json"))
    assert doc["action"] == "BLEND" and doc["status"] == "SUCCESS" and doc["files"] == [f"{doc['id']}.png"]
    png(mjgate.cwd / doc["files"][0])


def test_task_tasks_wait_and_download(mjgate, world):
    submitted = document(mjgate.run("imagine", "to be listed", "--json"))
    waited = document(mjgate.run("wait", submitted["id"], "--out", "w.png", "--json"))
    assert set(waited) == TASK_KEYS | {"files"} and waited["status"] == "SUCCESS" and waited["files"] == ["w.png"]

    shown = document(mjgate.run("task", submitted["id"], "--json"))
    assert set(shown) == TASK_KEYS
    assert shown["id"] == submitted["id"] and shown["prompt"] == "to be listed"
    assert shown["image_url"].startswith(world.base_url + "/mj/image/")

    listed = document(mjgate.run("tasks", "--limit", "2", "--json"))
    assert isinstance(listed, list) and len(listed) == 2
    assert all(set(t) == TASK_KEYS for t in listed)
    assert listed[0]["id"] == submitted["id"]  # newest first

    fetched = document(mjgate.run("download", submitted["id"], "--out", "d/x.png", "--split", "--json"))
    assert set(fetched) == {"id", "files"}
    assert fetched["files"] == [f"d/x-{i}.png" for i in range(1, 5)]
    for name in fetched["files"]:
        png(mjgate.cwd / name)


def test_cancel_ends_an_unfinished_task_and_says_so_when_it_cannot(mjgate, world, sim_knobs):
    sim_knobs.configure(step_seconds=30)  # the task stays unfinished while it is cancelled
    submitted = document(mjgate.run("imagine", "to cancel", "--json"))
    done = mjgate.run("cancel", submitted["id"], "--json")
    assert done.returncode == 0, done.stderr
    assert document(done) == {"id": submitted["id"], "code": 1, "description": "Cancelled"}
    assert document(mjgate.run("task", submitted["id"], "--json"))["status"] == "CANCEL"
    # Cancelling it again: one clear line from the gateway, exit 1.
    again = mjgate.run("cancel", submitted["id"], "--json")
    assert again.returncode == 1
    doc = json.loads(again.stdout)
    assert set(doc) == {"error"} and "already CANCEL" in doc["error"]["message"]
    assert again.stderr.strip().splitlines() == [f"error: {doc['error']['message']}"]


def test_human_output_names_the_task_and_its_next_buttons(mjgate):
    done = mjgate.run("imagine", "for people", "--wait")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    task_id = lines[0].split()[1]
    assert lines[0] == f"task {task_id} SUCCESS (IMAGINE, 100%)"
    assert lines[1] == f"saved {task_id}.png"
    assert lines[2].startswith(f"next: mjgate action {task_id} U1")
    assert "U1 U2 U3 U4 reroll V1 V2 V3 V4" in lines[2]
    assert (mjgate.cwd / f"{task_id}.png").is_file()
