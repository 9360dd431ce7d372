"""Short action names (U1, V2, reroll, zoom-out-2x, ...) and the button customIds they stand for.

A follow-up is always pressed through one of the parent task's own buttons (its customId carries
the job's hash), so the client only has to recognise which button a name means. The grammar is
Midjourney's, as midjourney-proxy relays it (SPEC 3.2):

    MJ::JOB::upsample::{1-4}::{hash}                 U1..U4
    MJ::JOB::variation::{1-4}::{hash}                V1..V4
    MJ::JOB::reroll::0::{hash}::SOLO                 reroll
    MJ::JOB::upsample_v6_2x_subtle::1::{hash}::SOLO  upscale-subtle (and _creative, v5's _2x/_4x)
    MJ::JOB::low_variation / high_variation          vary-subtle / vary-strong
    MJ::Inpaint::1::{hash}::SOLO                     vary-region (needs a mask: a modal)
    MJ::Outpaint::{50|75}::1::{hash}::SOLO           zoom-out-2x / zoom-out-1.5x
    MJ::CustomZoom::{hash}                           custom-zoom (needs a prompt: a modal)
    MJ::JOB::pan_{left|right|up|down}::1::...        pan-left ...
    MJ::JOB::animate_{high|low}::1::...              animate-high / animate-low
"""

from __future__ import annotations

import re

_GRAMMAR: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^MJ::JOB::upsample::(?P<n>[1-4])::"), "U{n}"),
    (re.compile(r"^MJ::JOB::variation::(?P<n>[1-4])::"), "V{n}"),
    (re.compile(r"^MJ::JOB::reroll::"), "reroll"),
    (re.compile(r"^MJ::JOB::upsample_(?:v\d+_)?2x_subtle::"), "upscale-subtle"),
    (re.compile(r"^MJ::JOB::upsample_(?:v\d+_)?2x_creative::"), "upscale-creative"),
    (re.compile(r"^MJ::JOB::upsample_(?:v\d+_)?(?P<x>2x|4x)::"), "upscale-{x}"),
    (re.compile(r"^MJ::JOB::low_variation::"), "vary-subtle"),
    (re.compile(r"^MJ::JOB::high_variation::"), "vary-strong"),
    (re.compile(r"^MJ::Inpaint::"), "vary-region"),
    (re.compile(r"^MJ::Outpaint::50::"), "zoom-out-2x"),
    (re.compile(r"^MJ::Outpaint::75::"), "zoom-out-1.5x"),
    (re.compile(r"^MJ::CustomZoom::"), "custom-zoom"),
    (re.compile(r"^MJ::JOB::pan_(?P<d>left|right|up|down)::"), "pan-{d}"),
    (re.compile(r"^MJ::JOB::animate_(?P<m>high|low)::"), "animate-{m}"),
]

# Names whose button opens a modal: the upstream answers 21 and waits for /submit/modal.
MODAL_ACTIONS = frozenset({"vary-region", "custom-zoom"})

# Other spellings people type, AceData's included (upscale1, variation_subtle, zoom_out_1_5x).
_ALIASES = {
    "r": "reroll", "re-roll": "reroll",
    "zoom-out-1-5x": "zoom-out-1.5x", "zoom-out-15x": "zoom-out-1.5x", "zoom-2x": "zoom-out-2x",
    "zoom-1.5x": "zoom-out-1.5x",
    "variation-subtle": "vary-subtle", "variation-strong": "vary-strong", "variation-region": "vary-region",
    "low-variation": "vary-subtle", "high-variation": "vary-strong", "inpaint": "vary-region",
    "subtle-upscale": "upscale-subtle", "creative-upscale": "upscale-creative",
}
_SHORT_INDEXED = re.compile(r"^(?P<kind>[uv])(?P<n>[1-4])$")
_LONG_INDEXED = re.compile(r"^(?P<kind>upscale|upsample|variation)-?(?P<n>[1-4])$")


def action_name(custom_id: str) -> str | None:
    """The short name of the button whose customId this is, or None outside the grammar."""
    for pattern, template in _GRAMMAR:
        if m := pattern.match(custom_id or ""):
            return template.format(**m.groupdict())
    return None


def normalize(name: str) -> str:
    """One spelling per action: 'u1' -> 'U1', 'zoom_out_1_5x' -> 'zoom-out-1.5x', 'upscale2' -> 'U2'."""
    text = name.strip().lower().replace("_", "-").replace(" ", "-")
    if m := _SHORT_INDEXED.match(text):
        return f"{m['kind'].upper()}{m['n']}"
    if m := _LONG_INDEXED.match(text):
        return f"{'V' if m['kind'] == 'variation' else 'U'}{m['n']}"
    return _ALIASES.get(text, text)


def is_custom_id(name: str) -> bool:
    return name.startswith("MJ::")
