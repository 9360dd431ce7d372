"""The customId grammar of Midjourney's buttons: building button rows and reading them back."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Actions whose result is a 2x2 grid, and therefore offer U1-U4 / V1-V4 / reroll.
GRID_ACTIONS = frozenset(
    {
        "IMAGINE",
        "VARIATION",
        "REROLL",
        "ZOOM",
        "CUSTOM_ZOOM",
        "PAN",
        "BLEND",
        "HIGH_VARIATION",
        "LOW_VARIATION",
        "INPAINT",
        "EDIT",  # what midjourney-proxy (trueai-org) calls /submit/edits jobs
        "EDITS",
        "RETEXTURE",
    }
)
# Actions whose result is one picture.
SINGLE_ACTIONS = frozenset({"UPSCALE", "SWAP_FACE", "VIDEO"})


def _button(custom_id: str, label: str = "", emoji: str = "", style: int = 2) -> dict:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": style}


def grid_buttons(hash_: str) -> list[dict]:
    row = [_button(f"MJ::JOB::upsample::{i}::{hash_}", label=f"U{i}") for i in range(1, 5)]
    row.append(_button(f"MJ::JOB::reroll::0::{hash_}::SOLO", emoji="🔄"))
    row += [_button(f"MJ::JOB::variation::{i}::{hash_}", label=f"V{i}") for i in range(1, 5)]
    return row


def upscale_buttons(hash_: str) -> list[dict]:
    return [
        _button(f"MJ::JOB::upsample_v6_2x_subtle::1::{hash_}::SOLO", label="Upscale (Subtle)"),
        _button(f"MJ::JOB::upsample_v6_2x_creative::1::{hash_}::SOLO", label="Upscale (Creative)"),
        _button(f"MJ::JOB::low_variation::1::{hash_}::SOLO", label="Vary (Subtle)", emoji="🪄"),
        _button(f"MJ::JOB::high_variation::1::{hash_}::SOLO", label="Vary (Strong)", emoji="🪄"),
        _button(f"MJ::Inpaint::1::{hash_}::SOLO", label="Vary (Region)", emoji="🖌️"),
        _button(f"MJ::Outpaint::50::1::{hash_}::SOLO", label="Zoom Out 2x", emoji="🔍"),
        _button(f"MJ::Outpaint::75::1::{hash_}::SOLO", label="Zoom Out 1.5x", emoji="🔍"),
        _button(f"MJ::CustomZoom::{hash_}", label="Custom Zoom", emoji="🔍"),
        _button(f"MJ::JOB::pan_left::1::{hash_}::SOLO", emoji="⬅️"),
        _button(f"MJ::JOB::pan_right::1::{hash_}::SOLO", emoji="➡️"),
        _button(f"MJ::JOB::pan_up::1::{hash_}::SOLO", emoji="⬆️"),
        _button(f"MJ::JOB::pan_down::1::{hash_}::SOLO", emoji="⬇️"),
        _button(f"MJ::JOB::animate_high::1::{hash_}::SOLO", label="Animate (High motion)", emoji="🎞️"),
        _button(f"MJ::JOB::animate_low::1::{hash_}::SOLO", label="Animate (Low motion)", emoji="🎞️"),
    ]


def buttons_for(action: str, hash_: str) -> list[dict]:
    if action in GRID_ACTIONS:
        return grid_buttons(hash_)
    if action == "UPSCALE":
        return upscale_buttons(hash_)
    return []


@dataclass(frozen=True)
class ParsedCustomId:
    action: str
    index: int
    hash: str
    needs_modal: bool = False

    def for_hash(self, custom_id: str, hash_: str) -> str:
        """The same button as it appears on the task whose hash is `hash_`."""
        return custom_id.replace(self.hash, hash_)


_H = r"(?P<hash>[A-Za-z0-9][A-Za-z0-9-]*)"
_GRAMMAR: list[tuple[re.Pattern[str], str | None, bool]] = [
    # (pattern, action or None when it depends on the match, needs a modal)
    (re.compile(rf"MJ::JOB::upsample::(?P<index>[1-4])::{_H}"), "UPSCALE", False),
    (re.compile(rf"MJ::JOB::variation::(?P<index>[1-4])::{_H}"), "VARIATION", False),
    (re.compile(rf"MJ::JOB::reroll::0::{_H}::SOLO"), "REROLL", False),
    (re.compile(rf"MJ::JOB::(?P<kind>low|high)_variation::1::{_H}::SOLO"), None, False),
    (
        re.compile(rf"MJ::JOB::upsample_(?:v\d+_)?(?:2x|4x)(?:_(?:subtle|creative))?::1::{_H}::SOLO"),
        "UPSCALE",
        False,
    ),
    (re.compile(rf"MJ::Outpaint::(?:50|75)::1::{_H}::SOLO"), "ZOOM", False),
    (re.compile(rf"MJ::CustomZoom::{_H}"), "CUSTOM_ZOOM", True),
    (re.compile(rf"MJ::JOB::pan_(?:left|right|up|down)::1::{_H}::SOLO"), "PAN", False),
    (re.compile(rf"MJ::Inpaint::1::{_H}::SOLO"), "INPAINT", True),
    (re.compile(rf"MJ::JOB::animate_(?:high|low)::1::{_H}::SOLO"), "VIDEO", False),
]


def parse_custom_id(custom_id: str) -> ParsedCustomId | None:
    """The action a button triggers, or None for anything outside the grammar."""
    for pattern, action, modal in _GRAMMAR:
        m = pattern.fullmatch(custom_id)
        if m is None:
            continue
        groups = m.groupdict()
        if action is None:
            action = f"{groups['kind'].upper()}_VARIATION"
        return ParsedCustomId(action, int(groups.get("index") or 1), groups["hash"], modal)
    return None


def change_custom_id(action: str, index: int, hash_: str) -> str | None:
    """The button /submit/change stands for (UPSCALE|VARIATION|REROLL + index)."""
    if action == "REROLL":
        return f"MJ::JOB::reroll::0::{hash_}::SOLO"
    if not 1 <= index <= 4:
        return None
    if action == "UPSCALE":
        return f"MJ::JOB::upsample::{index}::{hash_}"
    if action == "VARIATION":
        return f"MJ::JOB::variation::{index}::{hash_}"
    return None
