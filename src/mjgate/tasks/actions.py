"""Midjourney actions: the customId grammar of result buttons, and what each submit route does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mjgate.errors import BadRequest

ACTIONS = (
    "IMAGINE", "UPSCALE", "VARIATION", "REROLL", "DESCRIBE", "BLEND", "SHORTEN", "ZOOM", "CUSTOM_ZOOM", "PAN",
    "INPAINT", "HIGH_VARIATION", "LOW_VARIATION", "MODAL", "SWAP_FACE", "UPLOAD", "VIDEO", "EDITS",
)
# Actions that need a second step: the upstream answers 21 and waits for /submit/modal.
MODAL_ACTIONS = frozenset({"INPAINT", "CUSTOM_ZOOM"})
# Actions that act on an earlier task and therefore must go to that task's channel.
FOLLOW_UP_ACTIONS = frozenset({
    "UPSCALE", "VARIATION", "REROLL", "ZOOM", "CUSTOM_ZOOM", "PAN", "INPAINT", "HIGH_VARIATION", "LOW_VARIATION",
    "VIDEO", "MODAL",
})


@dataclass(frozen=True)
class ButtonAction:
    action: str
    index: int | None = None


_JOB = re.compile(r"^MJ::JOB::(?P<kind>[a-z0-9_]+)::(?P<index>\d+)::(?P<hash>[^:]+)(?:::SOLO)?$")
_OUTPAINT = re.compile(r"^MJ::Outpaint::(?P<scale>\d+)::(?P<index>\d+)::(?P<hash>[^:]+)(?:::SOLO)?$")
_CUSTOM_ZOOM = re.compile(r"^MJ::CustomZoom::(?P<hash>[^:]+)$")
_INPAINT = re.compile(r"^MJ::Inpaint::(?P<index>\d+)::(?P<hash>[^:]+)(?:::SOLO)?$")


def parse_custom_id(custom_id: str) -> ButtonAction:
    """Map a button's customId to the action it runs; anything unknown is a validation error."""
    if not isinstance(custom_id, str) or not custom_id.strip():
        raise BadRequest("customId is required")
    custom_id = custom_id.strip()
    if m := _JOB.match(custom_id):
        kind, index = m["kind"], int(m["index"])
        if kind == "upsample" or kind.startswith("upsample_"):
            return ButtonAction("UPSCALE", index)
        if kind == "variation":
            return ButtonAction("VARIATION", index)
        if kind == "reroll":
            return ButtonAction("REROLL", None)
        if kind == "low_variation":
            return ButtonAction("LOW_VARIATION", index)
        if kind == "high_variation":
            return ButtonAction("HIGH_VARIATION", index)
        if kind in ("pan_left", "pan_right", "pan_up", "pan_down"):
            return ButtonAction("PAN", index)
        if kind in ("animate_high", "animate_low"):
            return ButtonAction("VIDEO", index)
    elif m := _OUTPAINT.match(custom_id):
        return ButtonAction("ZOOM", int(m["index"]))
    elif _CUSTOM_ZOOM.match(custom_id):
        return ButtonAction("CUSTOM_ZOOM", None)
    elif m := _INPAINT.match(custom_id):
        return ButtonAction("INPAINT", int(m["index"]))
    raise BadRequest(f"unknown customId {custom_id[:120]!r}: not a Midjourney button this gateway can run")


_CHANGE_ACTIONS = {"UPSCALE", "VARIATION", "REROLL"}
_SIMPLE_CHANGE = re.compile(r"^\s*(?P<task>\S+)\s+(?P<op>[UuVv][1-4]|[Rr])\s*$")


def parse_change(action: object, index: object) -> ButtonAction:
    name = str(action or "").upper()
    if name not in _CHANGE_ACTIONS:
        raise BadRequest("action must be UPSCALE, VARIATION or REROLL")
    if name == "REROLL":
        return ButtonAction("REROLL", None)
    try:
        number = int(index)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadRequest("index must be 1, 2, 3 or 4") from None
    if number not in (1, 2, 3, 4) or isinstance(index, bool):
        raise BadRequest("index must be 1, 2, 3 or 4")
    return ButtonAction(name, number)


def parse_simple_change(content: object) -> tuple[str, ButtonAction]:
    """'<taskId> U1' -> (taskId, UPSCALE 1); V1-V4 variations, R reroll."""
    m = _SIMPLE_CHANGE.match(str(content or ""))
    if not m:
        raise BadRequest("content must look like '<taskId> U1' (U1-U4, V1-V4 or R)")
    op = m["op"].upper()
    if op == "R":
        return m["task"], ButtonAction("REROLL", None)
    return m["task"], ButtonAction("UPSCALE" if op[0] == "U" else "VARIATION", int(op[1]))
