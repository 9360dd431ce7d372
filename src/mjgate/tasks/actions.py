"""Midjourney actions: the customId grammar of result buttons, and what each submit route does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mjgate.errors import BadRequest

ACTIONS = (
    "IMAGINE", "UPSCALE", "VARIATION", "REROLL", "DESCRIBE", "BLEND", "SHORTEN", "ZOOM", "CUSTOM_ZOOM", "PAN",
    "INPAINT", "HIGH_VARIATION", "LOW_VARIATION", "MODAL", "SWAP_FACE", "UPLOAD", "VIDEO", "EDITS",
    "RETEXTURE", "SWAP_VIDEO_FACE",  # the most-used midjourney-proxy fork's /submit/retexture, /insight-face/video-swap
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
    """What a button does: the task action it creates, on which image of a grid (index), and
    the button's own kind as its customId names it (e.g. "upsample_v6_2x_subtle", "pan_left",
    "outpaint" with scale 50 or 75, "custom_zoom", "inpaint")."""

    action: str
    index: int | None = None
    kind: str = ""
    scale: int | None = None


_JOB = re.compile(r"^MJ::JOB::(?P<kind>[a-z0-9_]+)::(?P<index>\d+)::(?P<hash>[^:]+)(?:::SOLO)?$")
_OUTPAINT = re.compile(r"^MJ::Outpaint::(?P<scale>\d+)::(?P<index>\d+)::(?P<hash>[^:]+)(?:::SOLO)?$")
_CUSTOM_ZOOM = re.compile(r"^MJ::CustomZoom::(?P<hash>[^:]+)$")
_INPAINT = re.compile(r"^MJ::Inpaint::(?P<index>\d+)::(?P<hash>[^:]+)(?:::SOLO)?$")
# Job kinds by the action they create (upsample_* covers v5's 2x/4x and v6's subtle/creative).
_JOB_ACTIONS = {"variation": "VARIATION", "low_variation": "LOW_VARIATION", "high_variation": "HIGH_VARIATION",
                "pan_left": "PAN", "pan_right": "PAN", "pan_up": "PAN", "pan_down": "PAN",
                "animate_high": "VIDEO", "animate_low": "VIDEO"}


def _job_action(kind: str) -> str | None:
    if kind == "upsample" or kind.startswith("upsample_"):
        return "UPSCALE"
    if kind == "reroll":
        return "REROLL"
    return _JOB_ACTIONS.get(kind)


def try_parse_custom_id(custom_id: object) -> ButtonAction | None:
    """The button a customId names, or None if it is not one this gateway can run."""
    if not isinstance(custom_id, str):
        return None
    custom_id = custom_id.strip()
    if m := _JOB.match(custom_id):
        kind = m["kind"]
        action = _job_action(kind)
        if action is None:
            return None
        return ButtonAction(action, None if action == "REROLL" else int(m["index"]), kind)
    if m := _OUTPAINT.match(custom_id):
        return ButtonAction("ZOOM", int(m["index"]), "outpaint", int(m["scale"]))
    if _CUSTOM_ZOOM.match(custom_id):
        return ButtonAction("CUSTOM_ZOOM", None, "custom_zoom")
    if m := _INPAINT.match(custom_id):
        return ButtonAction("INPAINT", int(m["index"]), "inpaint")
    return None


def parse_custom_id(custom_id: object) -> ButtonAction:
    """Map a button's customId to the action it runs; anything unknown is a validation error."""
    if not isinstance(custom_id, str) or not custom_id.strip():
        raise BadRequest("customId is required")
    parsed = try_parse_custom_id(custom_id)
    if parsed is None:
        raise BadRequest(f"unknown customId {custom_id.strip()[:120]!r}: not a Midjourney button this gateway can run")
    return parsed


def buttons_of(task) -> list[tuple[str, ButtonAction]]:
    """A task's buttons that this gateway can run, as (customId, what it does), in their order."""
    found = []
    for button in task.buttons or []:
        custom_id = button.get("customId") if isinstance(button, dict) else None
        parsed = try_parse_custom_id(custom_id)
        if parsed is not None:
            found.append((custom_id, parsed))
    return found


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
