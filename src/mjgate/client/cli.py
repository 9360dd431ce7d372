"""The client commands of `mjgate` (login, imagine, action, describe, blend, task, tasks, wait,
download, cancel): HTTP to a gateway through `mjgate.client.Client`, never a database.

They are registered on the main `mjgate` app by `register(app)`; `mjgate.__main__` also runs them
from the small `app` below, so `mjgate imagine ...` starts without importing the server.

Output: people get short lines on stdout and a live progress bar on stderr; `--json` prints one
JSON document on stdout and nothing else there. Errors are one line on stderr, exit status 1;
Ctrl-C while waiting exits 130 and says how to resume.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mjgate.client import protocol
from mjgate.client.config import KEY_ENV, URL_ENV, load_config, save_config
from mjgate.client.errors import MjgateError, TaskFailedError
from mjgate.client.models import SubmitAnswer, Task
from mjgate.client.sync import Client

PANEL = "Client (HTTP to a gateway)"
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Mode(str, Enum):
    fast = "fast"
    relax = "relax"
    turbo = "turbo"


class Auth(str, Enum):
    bearer = "bearer"
    mj_api_secret = "mj-api-secret"


class Dimensions(str, Enum):
    portrait = "PORTRAIT"
    square = "SQUARE"
    landscape = "LANDSCAPE"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout (progress goes to stderr).")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait for the result with a progress bar, then save it.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Where to save the image (default ./<task id>.png).")]
SplitOpt = Annotated[bool, typer.Option("--split", help="Save the 2x2 grid as four files <name>-1..4 instead.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Give up waiting after this many seconds (0: never).")]
ModeOpt = Annotated[Optional[Mode], typer.Option("--mode", help="Speed mode (default: the gateway's).")]


# ---------------------------------------------------------------- plumbing


class _Interrupted(Exception):
    def __init__(self, task_id: str | None) -> None:
        self.task_id = task_id


def _fail(message: str, as_json: bool, kind: str = "MjgateError", status: int | None = None) -> None:
    if as_json:
        typer.echo(json.dumps({"error": {"type": kind, "message": message, "status": status}}, ensure_ascii=False))
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(EXIT_ERROR)


def client_command(fn):
    """One place turns client errors into one line + exit 1, and Ctrl-C into exit 130 with a hint."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except _Interrupted as stop:
            if stop.task_id:
                err.print(f"interrupted: task {stop.task_id} goes on at the gateway; "
                          f"resume with: mjgate wait {stop.task_id}")
            else:
                err.print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except MjgateError as exc:
            _fail(exc.message, as_json, type(exc).__name__, exc.status)

    return run


def _client() -> Client:
    stored = load_config()
    if not stored.url or not stored.key:
        raise MjgateError(f"not logged in: run `mjgate login --url URL --key sk-...` (or set {URL_ENV} and {KEY_ENV})")
    return Client(stored.url, stored.key, auth=stored.auth, poll_interval=1.0)


def _emit(document: Any) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2))


def task_document(task: Task) -> dict:
    """The JSON shape of a task in every command's --json output (docs/client.md lists the keys)."""
    return {
        "id": task.id, "action": task.action, "status": task.status, "progress": task.progress,
        "prompt": task.prompt, "image_url": task.image_url, "fail_reason": task.fail_reason or None,
        "submit_time": task.submit_time, "finish_time": task.finish_time, "buttons": task.actions,
    }


def submit_document(answer: SubmitAnswer) -> dict:
    return {"id": answer.task_id, "code": answer.code, "description": answer.description}


def _next_hint(task: Task) -> str | None:
    names = task.actions
    if not names:
        return None
    return f"next: mjgate action {task.id} {names[0]}   (buttons: {' '.join(names)})"


class ProgressDisplay:
    """A rich progress bar on a terminal; on anything else one plain line per change."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.live = err.is_terminal
        self._bar = None
        self._row = None

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("task {task.fields[task_id]}"), BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                console=err, refresh_per_second=8,
            )
            self._bar.start()
            self._row = self._bar.add_task("wait", total=100, task_id=self.task_id, status="")
        return self

    def update(self, task: Task) -> None:
        if self._bar is not None:
            self._bar.update(self._row, completed=task.percent, status=task.status)
        else:
            err.print(f"task {task.id} {task.status} {task.progress}".rstrip())

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.refresh()
            self._bar.stop()


def _wait(client: Client, task_id: str, timeout: float) -> Task:
    """Wait with a progress display; a failed task still comes back (the caller reports it)."""
    try:
        with ProgressDisplay(task_id) as display:
            return client.wait(task_id, timeout=timeout or None, on_progress=display.update, raise_on_failure=False)
    except KeyboardInterrupt:
        raise _Interrupted(task_id) from None


def _save(client: Client, task: Task, out_path: Path | None, split: bool) -> list[str]:
    if not task.succeeded or not task.image_url or task.action == "DESCRIBE":
        return []
    return [str(p) for p in client.download(task, out_path, split=split)]


def _finish(task: Task, files: list[str], as_json: bool, extra: dict | None = None) -> None:
    """Print the waited-for task; a task that failed is an error exit after its document."""
    document = {**task_document(task), "files": files, **(extra or {})}
    if as_json:
        _emit(document)
    else:
        detail = ", ".join(filter(None, [task.action, task.progress]))
        out.print(f"task {task.id} {task.status}" + (f" ({detail})" if detail else ""))
        for path in files:
            out.print(f"saved {path}")
        for line in (extra or {}).get("descriptions", []):
            out.print(f"  {escape(line)}")
        if hint := _next_hint(task):
            out.print(hint)
    if not task.succeeded:
        if as_json:
            err.print(f"[red]error:[/red] {escape(TaskFailedError(task).message)}")
            raise typer.Exit(EXIT_ERROR)
        _fail(TaskFailedError(task).message, False)


def _submitted(answer: SubmitAnswer, as_json: bool) -> None:
    if as_json:
        _emit(submit_document(answer))
        return
    note = f" ({answer.description})" if answer.description else ""
    out.print(f"task {answer.task_id} submitted{escape(note)}")
    out.print(f"follow it: mjgate wait {answer.task_id}")


def _submit_then(client: Client, answer: SubmitAnswer, wait: bool, out_path: Path | None, split: bool,
                 timeout: float, as_json: bool) -> None:
    if not (wait or out_path or split):
        _submitted(answer, as_json)
        return
    task = _wait(client, answer.task_id, timeout)
    try:
        files = _save(client, task, out_path, split)
    except KeyboardInterrupt:
        raise _Interrupted(task.id) from None
    _finish(task, files, as_json)


# ---------------------------------------------------------------- commands


@client_command
def login(
    url: Annotated[str, typer.Option("--url", help="The gateway, e.g. http://127.0.0.1:3000")],
    key: Annotated[str, typer.Option("--key", help="Your API key (sk-...).")],
    auth: Annotated[Auth, typer.Option("--auth", help="Send the key as 'Authorization: Bearer' or only "
                                       "as mj-api-secret (midjourney-proxy servers).")] = Auth.bearer,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Try the key before saving it.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Store the gateway URL and API key for the client commands (mode 0600)."""
    base = protocol.base_url_of(url)
    if check:
        with Client(base, key, auth=auth.value, use_sse=False) as client:
            client.list_tasks(limit=1)
    path = save_config(base, key, auth.value)
    if as_json:
        _emit({"url": base, "auth": auth.value, "config_path": str(path)})
        return
    out.print(f"logged in to {base}; settings saved in {path}")
    overridden = [name for name in (URL_ENV, KEY_ENV) if os.environ.get(name)]
    if overridden:
        err.print(f"note: {' and '.join(overridden)} set in this shell override the saved settings")


@client_command
def imagine(
    prompt: Annotated[str, typer.Argument(help="What to draw (Midjourney parameters like --ar 16:9 allowed).")],
    mode: ModeOpt = None,
    image: Annotated[Optional[list[str]], typer.Option("--image", help="A reference image: a file (uploaded) or "
                                                       "an http(s) URL (put in the prompt). Repeatable.")] = None,
    wait: WaitOpt = False,
    out_path: OutOpt = None,
    split: SplitOpt = False,
    timeout: TimeoutOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Submit a prompt; with --wait show its progress and save the picture."""
    with _client() as client:
        answer = client.submit_imagine(prompt, images=image or [], mode=mode.value if mode else None)
        _submit_then(client, answer, wait, out_path, split, timeout, as_json)


@client_command
def action(
    task: Annotated[str, typer.Argument(help="The finished task whose button to press.")],
    name: Annotated[str, typer.Argument(help="U1-U4, V1-V4, reroll, zoom-out-2x, zoom-out-1.5x, pan-left|right|up|"
                                        "down, upscale-subtle|creative, vary-subtle|strong|region, custom-zoom, "
                                        "animate-high|low, or a raw customId.")],
    prompt: Annotated[Optional[str], typer.Option("--prompt", help="custom-zoom: the new prompt.")] = None,
    mask: Annotated[Optional[str], typer.Option("--mask", help="vary-region: the mask image file or URL.")] = None,
    mode: ModeOpt = None,
    wait: WaitOpt = False,
    out_path: OutOpt = None,
    split: SplitOpt = False,
    timeout: TimeoutOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Run a follow-up action (upscale, variation, zoom, pan, ...) on a finished task."""
    with _client() as client:
        answer = client.submit_action(task, name, prompt=prompt, mask=mask, mode=mode.value if mode else None)
        _submit_then(client, answer, wait, out_path, split, timeout, as_json)


@client_command
def describe(
    image: Annotated[str, typer.Argument(help="The image: a file or an http(s) URL.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait and print the four prompts.")] = False,
    timeout: TimeoutOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Ask for four prompts that describe an image."""
    with _client() as client:
        answer = client.submit_describe(image)
        if not wait:
            _submitted(answer, as_json)
            return
        task = _wait(client, answer.task_id, timeout)
        _finish(task, [], as_json, {"descriptions": task.descriptions})


@client_command
def blend(
    images: Annotated[list[str], typer.Argument(help="2 to 5 images: files or http(s) URLs.")],
    dimensions: Annotated[Dimensions, typer.Option("--dimensions", help="Shape of the result.")] = Dimensions.square,
    mode: ModeOpt = None,
    wait: WaitOpt = False,
    out_path: OutOpt = None,
    split: SplitOpt = False,
    timeout: TimeoutOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Blend 2 to 5 images into a new grid."""
    with _client() as client:
        answer = client.submit_blend(images, dimensions=dimensions.value, mode=mode.value if mode else None)
        _submit_then(client, answer, wait, out_path, split, timeout, as_json)


@client_command
def task(
    task_id: Annotated[str, typer.Argument(metavar="TASK", help="The task id.")],
    as_json: JsonOpt = False,
) -> None:
    """Show one task: status, progress, image URL and its buttons."""
    with _client() as client:
        found = client.fetch(task_id)
    if as_json:
        _emit(task_document(found))
        return
    rows = [("id", found.id), ("action", found.action), ("status", found.status), ("progress", found.progress),
            ("prompt", found.prompt), ("image", found.image_url), ("failure", found.fail_reason),
            ("buttons", " ".join(found.actions))]
    for label, value in rows:
        if value:
            out.print(f"{label:>9}: {escape(str(value))}")


@client_command
def tasks(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many recent tasks to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List your recent tasks, newest first."""
    with _client() as client:
        found = client.list_tasks(limit=limit)
    if as_json:
        _emit([task_document(t) for t in found])
        return
    table = Table("id", "action", "status", "progress", "prompt")
    for t in found:
        table.add_row(t.id, t.action or "", t.status, t.progress, escape((t.prompt or "")[:60]))
    out.print(table)


@client_command
def wait(
    task_id: Annotated[str, typer.Argument(metavar="TASK", help="The task id.")],
    out_path: OutOpt = None,
    split: SplitOpt = False,
    timeout: TimeoutOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Wait for a task with a progress bar, then save its picture (as imagine --wait does)."""
    with _client() as client:
        found = _wait(client, task_id, timeout)
        try:
            files = _save(client, found, out_path, split)
        except KeyboardInterrupt:
            raise _Interrupted(found.id) from None
        extra = {"descriptions": found.descriptions} if found.action == "DESCRIBE" else None
        _finish(found, files, as_json, extra)


@client_command
def download(
    task_id: Annotated[str, typer.Argument(metavar="TASK", help="The task id.")],
    out_path: OutOpt = None,
    split: SplitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Save a finished task's picture (or its four grid pictures with --split)."""
    with _client() as client:
        files = [str(p) for p in client.download(task_id, out_path, split=split)]
    if as_json:
        _emit({"id": task_id, "files": files})
        return
    for path in files:
        out.print(f"saved {path}")


@client_command
def cancel(
    task_id: Annotated[str, typer.Argument(metavar="TASK", help="The task id.")],
    as_json: JsonOpt = False,
) -> None:
    """Cancel an unfinished task (on gateways that support POST /mj/task/{id}/cancel)."""
    with _client() as client:
        answer = client.cancel(task_id)
    if as_json:
        _emit({"id": task_id, "code": answer.code, "description": answer.description})
        return
    out.print(f"task {task_id}: cancel requested" + (f" ({escape(answer.description)})" if answer.description else ""))


COMMANDS = {"login": login, "imagine": imagine, "action": action, "describe": describe, "blend": blend,
            "task": task, "tasks": tasks, "wait": wait, "download": download, "cancel": cancel}


def register(app: typer.Typer) -> None:
    """Add the client commands to a typer app (the main `mjgate` app, or the light one below)."""
    for name, fn in COMMANDS.items():
        app.command(name, rich_help_panel=PANEL)(fn)


def demo_hint(base_url: str, key: str) -> str:
    """The client line of the demo banner, ready to paste (with the path the user started mjgate by)."""
    program = sys.argv[0] if os.path.basename(sys.argv[0]) == "mjgate" else "mjgate"
    return f"{program} login --url {base_url} --key {key}  &&  {program} imagine \"a red fox\" --wait"


app = typer.Typer(help="mjgate's client commands.", no_args_is_help=True, add_completion=False)
register(app)
