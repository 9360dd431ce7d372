"""What a submitting use case answers: typed outcomes that every dialect renders in its own terms.

The core never speaks a client's codes; a dialect maps these (midjourney-proxy: Accepted -> 1 or 22,
NeedsModal -> 21, Refused by kind -> 4, 24, 3, 9, 23; AceData: HTTP statuses and error names).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mjgate.errors import GatewayError, Kind
from mjgate.models import Task


@dataclass
class Accepted:
    """The task exists and is on its way; queue_position is set while it waits (upstream or gateway);
    `queued` when it waits in the gateway's own queue for a channel with room."""

    task: Task
    description: str = ""
    queue_position: int | None = None
    properties: dict = field(default_factory=dict)
    queued: bool = False


@dataclass
class NeedsModal:
    """The upstream took the button but waits for a second step (a prompt, a mask): continue with modal."""

    task: Task
    description: str = ""


@dataclass
class Uploaded:
    """An upload finishes at once: its result is the image URLs."""

    task: Task
    urls: list[str]
    description: str = ""


@dataclass
class Refused:
    """Nothing runs; any reservation is released. `task` is set when an existing task stays as it was
    (a modal the upstream refused can be sent again)."""

    kind: str
    message: str
    task: Task | None = None
    properties: dict = field(default_factory=dict)
    error: GatewayError | None = None  # the refusing error, when the gateway refused before any upstream

    @property
    def status(self) -> int | None:
        """The HTTP status the refusing error suggests, for faces that answer by status."""
        return self.error.status if self.error is not None else None

    @classmethod
    def of(cls, error: GatewayError) -> Refused:
        return cls(error.kind, error.message, error=error, properties=dict(getattr(error, "properties", None) or {}))


Outcome = Accepted | NeedsModal | Uploaded | Refused

__all__ = ["Accepted", "NeedsModal", "Uploaded", "Refused", "Outcome", "Kind"]
