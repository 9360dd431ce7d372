"""AceData's action names for transforms, mapped onto the buttons of the parent result."""

from __future__ import annotations

import re

from mjgate.models import Task
from mjgate.tasks.actions import ButtonAction, buttons_of

_UPSCALE_2X = re.compile(r"^upsample_(?:v\d+_)?2x(?:_subtle)?$")
_UPSCALE_4X = re.compile(r"^upsample_(?:v\d+_)?4x(?:_[a-z]+)?$")
_UPSCALE_CREATIVE = re.compile(r"^upsample_(?:v\d+_)?2x_creative$")


def _kind(kind: str, index: int | None = None):
    return lambda b: b.kind == kind and (index is None or b.index == index)


def _kind_like(pattern: re.Pattern):
    return lambda b: bool(pattern.match(b.kind))


def _outpaint(scale: int):
    return lambda b: b.kind == "outpaint" and b.scale == scale


# AceData action name -> which of the parent's buttons it presses, best first.
TRANSFORMS = {
    **{f"upscale{i}": (_kind("upsample", i),) for i in range(1, 5)},
    "reroll": (_kind("reroll"),),
    **{f"variation{i}": (_kind("variation", i),) for i in range(1, 5)},
    # v5 offers 2x/4x; v6+ offers Subtle/Creative (both 2x): the stronger one stands for 4x.
    "upscale_2x": (_kind_like(_UPSCALE_2X),),
    "upscale_4x": (_kind_like(_UPSCALE_4X), _kind_like(_UPSCALE_CREATIVE)),
    "variation_subtle": (_kind("low_variation"),),
    "variation_strong": (_kind("high_variation"),),
    "variation_region": (_kind("inpaint"),),
    "zoom_out_2x": (_outpaint(50),),
    "zoom_out_1_5x": (_outpaint(75),),
    **{f"pan_{d}": (_kind(f"pan_{d}"),) for d in ("left", "right", "up", "down")},
}
ACTIONS = ("generate", *TRANSFORMS)
MODAL_ACTION = "variation_region"


def button_for(name: str, task: Task) -> str | None:
    """The customId of the task's button that performs AceData action `name`, if it has one."""
    buttons = buttons_of(task)
    for matches in TRANSFORMS[name]:
        for custom_id, button in buttons:
            if matches(button):
                return custom_id
    return None


def name_of(button: ButtonAction) -> str | None:
    for name, predicates in TRANSFORMS.items():
        if any(matches(button) for matches in predicates):
            return name
    return None


def available_actions(task: Task) -> list[str]:
    """AceData action names the task's buttons offer, in the buttons' order."""
    found: list[str] = []
    for custom_id, _ in buttons_of(task):
        for name in TRANSFORMS:
            if name not in found and button_for(name, task) == custom_id:
                found.append(name)
    return found
