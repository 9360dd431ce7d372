"""The upstream port: what the core needs from an upstream service, whatever kind it is.

The core speaks in operations ("imagine", "action", "modal", ...) with midjourney-proxy's field
names as the common vocabulary of their parameters, and gets back normalized answers and task
snapshots. Each upstream kind is one module implementing `Upstream` (midjourney-proxy today:
upstream/mjproxy.py); `upstream/__init__.py` picks the module for a channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from mjgate.models import Channel

# Operations a task can be submitted with (SPEC §3.2 routes, named without their path).
OPERATIONS = ("imagine", "change", "simple_change", "action", "describe", "blend", "shorten", "video", "edits",
              "upload", "swap_face")


class UpstreamUnavailable(Exception):
    """The channel gave no usable answer: connection error, timeout, 5xx, or not JSON.

    Before acceptance this usually means "try the next channel": the job was not taken. When
    `maybe_taken`, the request reached the channel and its answer was lost (a timeout or a dropped
    connection after sending): the job may exist there, and another channel would run it twice.
    """

    def __init__(self, message: str = "", *, maybe_taken: bool = False):
        super().__init__(message)
        self.maybe_taken = maybe_taken


class CancelUnsupported(Exception):
    """The channel has no cancel route."""


class NoSeed(Exception):
    """The upstream has no seed for this task (not finished, or not an image)."""


@dataclass
class SubmitAnswer:
    """An upstream's answer to a submit or a modal, normalized.

    `code` is the upstream's own submit code, kept on the task as SPEC §2 asks (never rewritten);
    `refusal` is the core's Kind when the job was not taken, and `retryable` whether another
    channel may take it.
    """

    code: int
    description: str = ""
    upstream_id: str | None = None
    accepted: bool = False
    needs_modal: bool = False
    queue_position: int | None = None
    refusal: str | None = None
    retryable: bool = False
    result: Any = None
    properties: dict = field(default_factory=dict)


# A task as an upstream reports it, in task-column terms: any of id (the upstream's id), status,
# progress, image_url, video_url, video_urls, prompt, prompt_en, description, fail_reason, buttons,
# properties, start_time, finish_time. A key is present only when the upstream said something about it.
Snapshot = dict


class Upstream(Protocol):
    async def submit(self, channel: Channel, operation: str, params: dict, *, mode: str | None,
                     parent_upstream_id: str | None, notify_url: str | None) -> SubmitAnswer: ...

    async def modal(self, channel: Channel, upstream_id: str, params: dict, *,
                    notify_url: str | None) -> SubmitAnswer: ...

    async def fetch(self, channel: Channel, upstream_id: str) -> Snapshot | None: ...

    async def list(self, channel: Channel, upstream_ids: list[str], *, poller: str | None = None) -> list[Snapshot]: ...

    async def seed(self, channel: Channel, upstream_id: str) -> str: ...

    async def cancel(self, channel: Channel, upstream_id: str) -> tuple[bool, str]:
        """Ask the channel to cancel a task: (cancelled, the channel's words). Raises CancelUnsupported
        when the channel has no cancel route, UpstreamUnavailable when it does not answer."""

    async def probe(self, channel: Channel) -> None:
        """The cheapest authenticated call; raises UpstreamUnavailable when the channel does not answer."""

    def snapshot(self, payload: Any) -> Snapshot | None:
        """A task pushed by the upstream (its callback body), normalized; None if it is not a task."""
