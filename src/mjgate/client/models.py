"""Typed views of midjourney-proxy's JSON: a task, its buttons, a submit answer.

Lenient on purpose: mjgate, new-api and midjourney-proxy differ in which fields they send and
whether they send null, so every field has a default and unknown fields are kept (`model_extra`).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from mjgate.client.actions import action_name, normalize

TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCEL"})
# Codes of a submission the upstream took on: 1 accepted, 22 queued, 21 waiting for a modal (or "exists").
ACCEPTED_CODES = frozenset({1, 21, 22})
_KEYCAP_PREFIX = re.compile(r"^\s*(?:[0-9]\ufe0f?\u20e3|\d+[.)])\s*")


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class Button(_Model):
    custom_id: str = ""
    emoji: str = ""
    label: str = ""
    type: int | None = None
    style: int | None = None

    @field_validator("custom_id", "emoji", "label", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @property
    def name(self) -> str | None:
        """The client's short name for this button (U1, V2, reroll, zoom-out-2x, ...), None if unknown."""
        return action_name(self.custom_id)


class SubmitAnswer(_Model):
    """midjourney-proxy's `{code, description, result, properties}`; `result` is the new task id."""

    code: int
    description: str = ""
    result: Any = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("description", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return "" if value is None else str(value)

    @field_validator("properties", mode="before")
    @classmethod
    def _props(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}

    @property
    def task_id(self) -> str | None:
        return None if self.result in (None, "") else str(self.result)

    @property
    def accepted(self) -> bool:
        return self.code in ACCEPTED_CODES and self.task_id is not None

    @property
    def needs_modal(self) -> bool:
        return self.code == 21


class Task(_Model):
    id: str
    action: str | None = None
    status: str = ""
    progress: str = ""
    prompt: str = ""
    prompt_en: str = ""
    description: str = ""
    state: Any = None
    submit_time: int | None = None
    start_time: int | None = None
    finish_time: int | None = None
    image_url: str | None = None
    video_url: str | None = None
    video_urls: Any = None
    fail_reason: str | None = None
    buttons: list[Button] = Field(default_factory=list)
    properties: dict[str, Any] = Field(default_factory=dict)
    bot_type: str | None = None
    mode: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("status", "progress", "prompt", "prompt_en", "description", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("buttons", mode="before")
    @classmethod
    def _buttons(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []

    @field_validator("properties", mode="before")
    @classmethod
    def _props(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"

    @property
    def percent(self) -> int:
        """Progress as a number 0-100 (a finished task is 100 whatever its progress string says)."""
        if self.succeeded:
            return 100
        digits = re.match(r"\s*(\d+)", self.progress or "")
        return min(100, int(digits.group(1))) if digits else 0

    @property
    def actions(self) -> list[str]:
        """Short names of the buttons this task offers, in button order (unknown buttons by customId)."""
        return [b.name or b.custom_id for b in self.buttons if b.custom_id]

    @property
    def is_grid(self) -> bool:
        """A 2x2 grid offers U1..U4: that, not the action name, is what makes splitting meaningful."""
        return any(b.name in ("U1", "U2", "U3", "U4") for b in self.buttons)

    @property
    def descriptions(self) -> list[str]:
        """A DESCRIBE's prompts: Midjourney separates them by blank lines and numbers them with keycaps."""
        text = self.prompt or self.prompt_en or ""
        parts = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        return [_KEYCAP_PREFIX.sub("", p) for p in parts]

    def button(self, name: str) -> Button | None:
        """The button for a short name (U1, reroll, ...) or a raw customId, None if the task lacks it."""
        wanted = normalize(name)
        for b in self.buttons:
            if b.custom_id == name or (b.name is not None and normalize(b.name) == wanted):
                return b
        return None
