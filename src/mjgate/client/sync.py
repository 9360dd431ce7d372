"""`Client`: the blocking client (scripts, notebooks, the `mjgate` commands)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import httpx
import httpx_sse

from mjgate.client import images as image_files
from mjgate.client import protocol
from mjgate.client.base import (
    DEFAULT_WAIT_TIMEOUT_S, SSE_MAX_FAILURES, ClientBase, ImageInput, ProgressCallback, TaskRef, Watcher,
    task_id_of,
)
from mjgate.client.errors import MjgateError, NotFoundError, TaskFailedError, UnsupportedError
from mjgate.client.models import SubmitAnswer, Task


class Client(ClientBase):
    """A midjourney-proxy-dialect client for mjgate, new-api or midjourney-proxy itself.

        with Client("http://127.0.0.1:3000", "sk-...") as mj:
            grid = mj.imagine("a red fox in the snow", on_progress=lambda t: print(t.progress))
            mj.download(grid, "fox.png")
            big = mj.action(grid, "U2")

    `Client()` without arguments reads what `mjgate login` stored (or MJGATE_URL / MJGATE_KEY).
    `auth="mj-api-secret"` sends the key only in that header, as midjourney-proxy servers expect.
    """

    def __init__(self, url: str | None = None, key: str | None = None, *, auth: str | None = None,
                 http: httpx.Client | None = None, **options) -> None:
        super().__init__(url, key, auth=auth, **options)
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=self.timeout)
        self._plain: httpx.Client | None = None  # for foreign image hosts: never gets the key

    def close(self) -> None:
        if self._own_http:
            self._http.close()
        if self._plain is not None:
            self._plain.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transport

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            return self._http.request(method, self.base_url + path, headers=self.headers, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _submit(self, path: str, body: dict) -> SubmitAnswer:
        return protocol.submit_answer(self._request("POST", path, json=body))

    def _fetch_image_input(self, url: str) -> str:
        try:
            resp = self._plain_http().get(url, follow_redirects=True)
        except httpx.TransportError as exc:
            raise MjgateError(f"cannot download {url}: {exc}") from None
        if resp.status_code != 200:
            raise MjgateError(f"cannot download {url}: HTTP {resp.status_code}")
        return protocol.data_uri(resp.content, url)

    def _plain_http(self) -> httpx.Client:
        if self._plain is None:
            self._plain = httpx.Client(timeout=self.timeout, headers={"User-Agent": protocol.USER_AGENT})
        return self._plain

    def _uploads(self, images: Iterable[ImageInput]) -> list[str]:
        """Every image as a data URI: describe and blend take no URLs, so those are downloaded here."""
        return [self._fetch_image_input(item) if isinstance(item, str) and protocol.is_url(item)
                else self._split_images([item])[0][0] for item in images]

    # ------------------------------------------------------------ submitting

    def submit_imagine(self, prompt: str, *, images: Iterable[ImageInput] = (), mode: str | None = None,
                       bot_type: str | None = None, notify_hook: str | None = None,
                       state: str | None = None) -> SubmitAnswer:
        uris, urls = self._split_images(images)
        body = protocol.imagine_body(prompt, uris, urls, bot_type=bot_type, notify_hook=notify_hook, state=state)
        return self._submit(protocol.submit_path("imagine", mode), body)

    def submit_action(self, task: TaskRef, name: str, *, prompt: str | None = None,
                      mask: ImageInput | None = None, mode: str | None = None, notify_hook: str | None = None,
                      state: str | None = None) -> SubmitAnswer:
        """Press one of a finished task's buttons by short name (U1, V2, reroll, zoom-out-2x...) or customId.

        custom-zoom needs `prompt` and vary-region a `mask`: those buttons open a modal (code 21),
        which is answered here, so the answer is the running task's.
        """
        if self._needs_modal(name):
            self._check_modal_input(name, prompt, mask)
        parent = task if isinstance(task, Task) and task.buttons else self.fetch(task)
        route, body = self._choose_button(parent, name)
        body = protocol.common_fields(body, notify_hook=notify_hook, state=state)
        answer = self._submit(protocol.submit_path(route, mode), body)
        if answer.needs_modal and (prompt is not None or mask is not None):
            answer = self.submit_modal(answer.task_id, prompt=prompt, mask=mask)
        return answer

    def submit_modal(self, task_id: TaskRef, *, prompt: str | None = None,
                     mask: ImageInput | None = None) -> SubmitAnswer:
        body: dict = {"taskId": task_id_of(task_id)}
        if prompt is not None:
            body["prompt"] = prompt
        if mask is not None:
            body["maskBase64"] = self._uploads([mask])[0]
        return self._submit("/mj/submit/modal", body)

    def submit_describe(self, image: ImageInput, *, mode: str | None = None, notify_hook: str | None = None,
                        state: str | None = None) -> SubmitAnswer:
        body = protocol.common_fields({"base64": self._uploads([image])[0]}, notify_hook=notify_hook, state=state)
        return self._submit(protocol.submit_path("describe", mode), body)

    def submit_blend(self, images: Sequence[ImageInput], *, dimensions: str = "SQUARE", mode: str | None = None,
                     notify_hook: str | None = None, state: str | None = None) -> SubmitAnswer:
        if not 2 <= len(images) <= 5:
            raise MjgateError(f"blend takes 2 to 5 images, got {len(images)}")
        body = protocol.common_fields({"base64Array": self._uploads(images), "dimensions": dimensions.upper()},
                                      notify_hook=notify_hook, state=state)
        return self._submit(protocol.submit_path("blend", mode), body)

    # ------------------------------------------------------------ submit and (optionally) wait

    def _follow(self, answer: SubmitAnswer, wait: bool, on_progress: ProgressCallback | None,
                timeout: float | None) -> Task:
        if wait:
            return self.wait(answer.task_id, on_progress=on_progress, timeout=timeout)
        return self.fetch(answer.task_id)

    def imagine(self, prompt: str, *, images: Iterable[ImageInput] = (), mode: str | None = None,
                wait: bool = True, on_progress: ProgressCallback | None = None,
                timeout: float | None = DEFAULT_WAIT_TIMEOUT_S, **fields) -> Task:
        """Submit an imagine; with wait (the default) return the finished task, else the task as submitted."""
        return self._follow(self.submit_imagine(prompt, images=images, mode=mode, **fields), wait, on_progress, timeout)

    def action(self, task: TaskRef, name: str, *, prompt: str | None = None, mask: ImageInput | None = None,
               mode: str | None = None, wait: bool = True, on_progress: ProgressCallback | None = None,
               timeout: float | None = DEFAULT_WAIT_TIMEOUT_S, **fields) -> Task:
        """Run a follow-up (U1..U4, V1..V4, reroll, zoom-out-2x, pan-left, vary-strong, ...) on a finished task.

        custom-zoom needs `prompt`, vary-region a `mask` (see submit_action).
        """
        answer = self.submit_action(task, name, prompt=prompt, mask=mask, mode=mode, **fields)
        return self._follow(answer, wait, on_progress, timeout)

    def describe(self, image: ImageInput, *, wait: bool = True, on_progress: ProgressCallback | None = None,
                 timeout: float | None = DEFAULT_WAIT_TIMEOUT_S, **fields) -> Task:
        """Four prompts for an image: `task.descriptions` once it has succeeded."""
        return self._follow(self.submit_describe(image, **fields), wait, on_progress, timeout)

    def blend(self, images: Sequence[ImageInput], *, dimensions: str = "SQUARE", wait: bool = True,
              on_progress: ProgressCallback | None = None, timeout: float | None = DEFAULT_WAIT_TIMEOUT_S,
              **fields) -> Task:
        return self._follow(self.submit_blend(images, dimensions=dimensions, **fields), wait, on_progress, timeout)

    # ------------------------------------------------------------ reading

    def fetch(self, task: TaskRef) -> Task:
        return protocol.task_of(self._request("GET", f"/mj/task/{task_id_of(task)}/fetch"))

    def fetch_many(self, ids: Iterable[TaskRef]) -> list[Task]:
        """Several tasks in one call (list-by-condition); unknown ids are left out."""
        wanted = [task_id_of(i) for i in ids]
        return protocol.tasks_of(self._request("POST", "/mj/task/list-by-condition", json={"ids": wanted}))

    def list_tasks(self, limit: int | None = None) -> list[Task]:
        """The caller's recent tasks, newest first (as many as the server lists, at most `limit`)."""
        tasks = protocol.tasks_of(self._request("GET", "/mj/task/list"))
        return tasks if limit is None else tasks[: max(0, limit)]

    def cancel(self, task: TaskRef) -> SubmitAnswer:
        """Ask the gateway to cancel an unfinished task (POST /mj/task/{id}/cancel)."""
        task_id = self.fetch(task).id  # an unknown task is NotFoundError, so a 404 below means "no such route"
        try:
            return protocol.submit_answer(self._request("POST", f"/mj/task/{task_id}/cancel", json={}))
        except NotFoundError as exc:
            raise UnsupportedError(f"this gateway cannot cancel tasks (POST /mj/task/{{id}}/cancel: {exc.message})",
                                   status=exc.status) from None
        except MjgateError as exc:
            if exc.status in (405, 501):
                raise UnsupportedError(f"this gateway cannot cancel tasks ({exc.message})", status=exc.status) from None
            raise

    # ------------------------------------------------------------ waiting

    def wait(self, task: TaskRef, *, timeout: float | None = DEFAULT_WAIT_TIMEOUT_S,
             on_progress: ProgressCallback | None = None, raise_on_failure: bool = True) -> Task:
        """Block until the task is finished; follows the gateway's SSE stream, or polls where there is none.

        Raises TaskFailedError when it ends in FAILURE/CANCEL (unless raise_on_failure=False) and
        TaskTimeoutError after `timeout` seconds (None: no limit); the task itself goes on either way.
        """
        deadline = self._deadline(timeout)
        watcher = Watcher(self.fetch(task), on_progress)
        watcher.see(watcher.task)
        if not watcher.task.done and self.use_sse and self._sse_supported is not False:
            self._wait_streaming(watcher, deadline, timeout)
        if not watcher.task.done:
            self._wait_polling(watcher, deadline, timeout)
        if raise_on_failure and not watcher.task.succeeded:
            raise TaskFailedError(watcher.task)
        return watcher.task

    def _wait_polling(self, watcher: Watcher, deadline: float | None, timeout: float | None) -> None:
        while not watcher.task.done:
            self._check_deadline(watcher.task, deadline, timeout)
            pause = self.poll_interval if deadline is None else min(self.poll_interval, deadline - time.monotonic())
            time.sleep(max(0.0, pause))
            watcher.see(self.fetch(watcher.task.id))

    def _wait_streaming(self, watcher: Watcher, deadline: float | None, timeout: float | None) -> None:
        """Follow /mj/task/events until the task is done; returns early (to polling) if the stream fails."""
        failures = 0
        while not watcher.task.done:
            self._check_deadline(watcher.task, deadline, timeout)
            try:
                # connect_sse adds its Accept header to the dict it is given: hand it a copy.
                with httpx_sse.connect_sse(
                        self._http, "GET", self.base_url + protocol.EVENTS_PATH, headers=dict(self.headers),
                        timeout=self._stream_timeout(deadline)) as source:
                    if source.response.status_code in (401, 403):
                        source.response.read()
                        protocol.raise_for_status(source.response)
                    if self._sse_refused(source.response):
                        self._sse_supported = False
                        return
                    self._sse_supported = True
                    # Subscribed: anything that happened before is in this fetch, anything after in the stream.
                    if watcher.see(self.fetch(watcher.task.id)).done:
                        return
                    for event in source.iter_sse():
                        if event.event == "task" and (changed := protocol.event_update(watcher.task, event.data)):
                            # A terminal event is confirmed by a fetch: the record, with image and buttons.
                            watcher.see(self.fetch(watcher.task.id) if changed.done else changed)
                            failures = 0
                        if watcher.stale:
                            watcher.see(self.fetch(watcher.task.id))
                        if watcher.task.done:
                            return
                        self._check_deadline(watcher.task, deadline, timeout)
            except httpx.ReadTimeout:
                # A quiet stream: reconnect, which also re-fetches the task.
                continue
            except (httpx.TransportError, httpx_sse.SSEError):
                failures += 1
                if failures >= SSE_MAX_FAILURES:
                    return
                time.sleep(min(1.0 * failures, 3.0))

    # ------------------------------------------------------------ images

    def download(self, task: TaskRef, path: str | Path | None = None, *, split: bool = False) -> list[Path]:
        """Save the task's image to `path` (default ./<task id>.png); split=True writes the four grid
        pictures as <name>-1..4 instead. Returns the files written."""
        task = task if isinstance(task, Task) and task.image_url else self.fetch(task)
        if not task.image_url:
            raise MjgateError(f"task {task.id} has no image (status {task.status or 'unknown'})")
        if split and not task.is_grid:
            raise MjgateError(f"task {task.id} ({task.action}) is a single picture, not a 2x2 grid to split")
        target = Path(path) if path is not None else image_files.default_path(task.id)
        url = protocol.absolute(task.image_url, self.base_url)
        # The key goes only to the gateway itself, never to a foreign image host.
        own = protocol.same_origin(url, self.base_url)
        http, headers = (self._http, self.headers) if own else (self._plain_http(), None)
        grid_file = target.with_name(f".{target.name}.grid") if split else target
        try:
            with http.stream("GET", url, headers=headers, follow_redirects=not own) as resp:
                if resp.status_code != 200:
                    resp.read()
                    protocol.raise_for_status(resp)
                    raise MjgateError(f"image download answered HTTP {resp.status_code}")
                with image_files.atomic_write(grid_file) as handle:
                    for chunk in resp.iter_bytes():
                        handle.write(chunk)
        except httpx.TransportError as exc:
            raise MjgateError(f"cannot download the image of task {task.id}: {exc}") from None
        if not split:
            return [target]
        try:
            return image_files.split_grid(grid_file, target)
        finally:
            grid_file.unlink(missing_ok=True)
