"""Per-parameter prices: rules that price a task by its action, mode and parameters.

A rule names an action (or "*"), optionally a mode, and parameters to match (all must match); it sets
the task's base price in USD (`price_usd`) or multiplies the action's base price (`ratio`). The
group and mode ratios apply on top, as for any price. Among the rules that match, the one with the
highest `priority` wins, then the most specific (more parameters, then a named action, then a
mode), then the first name in alphabetical order. The winner is snapshotted on the task with the
price charged (tasks.price_rule), so later edits never change what the task was charged or refunded.

Parameters the gateway reads from a task (parameters_of):

* `version`: the `--v` / `--version` of the prompt ("7", "6.1"); `niji`: the `--niji` version ("6",
  or "default" for a bare `--niji`; also "default" for a NIJI_JOURNEY task without one)
* `upscale`: for an upscale button, "subtle_2x", "creative_2x", "2x", "4x" or "standard" (the grid's U1-U4)
* `resolution` ("480p", "720p", from the request's resolution or a video type such as vid_1.1_i2v_720),
  `motion` ("low", "high"), `length` ("extend" for a video extension, else the request's length, else "base")
* `mask`: "yes" when the request has a mask (edits, inpaint), else "no"

A match value is compared case-insensitively; "*" matches any value the task has for that parameter.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mjgate.errors import BadRequest
from mjgate.tasks.actions import ACTIONS, try_parse_custom_id

OPTION_PRICE_RULES = "mj_price_rules"
PARAMETERS = ("version", "niji", "upscale", "resolution", "motion", "length", "mask")
MAX_RULES = 500
RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

_VERSION = re.compile(r"--(?:v|version)\s+([0-9]+(?:\.[0-9]+)?)", re.I)
_NIJI = re.compile(r"--niji(?:\s+([0-9]+(?:\.[0-9]+)?))?", re.I)
_UPSCALE = re.compile(r"^upsample(?:_v\d+)?(?:_(?P<scale>[24]x))?(?:_(?P<kind>subtle|creative))?$")
_RESOLUTION = re.compile(r"(\d{3,4})p?$")


class PriceRule(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Literal[("*", *ACTIONS)] = Field(..., description="The task action, or * for any")  # type: ignore[valid-type]
    mode: Literal["fast", "relax", "turbo"] | None = Field(None, description="Only in this mode (default: any)")
    match: dict[Literal[PARAMETERS], Annotated[str, Field(min_length=1, max_length=32)]] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="Parameters that must all match (\"*\": any value)")
    price_usd: float | None = Field(None, ge=0, le=10_000, description="The base price in USD")
    ratio: float | None = Field(None, ge=0, le=1_000, description="Or: times the action's base price")
    priority: int = Field(0, ge=-1000, le=1000, description="Higher wins among matching rules")

    @model_validator(mode="after")
    def _one_price(self):
        if (self.price_usd is None) == (self.ratio is None):
            raise ValueError("give exactly one of price_usd or ratio")
        return self


def validate_rule(name: str, rule: object) -> dict:
    if not isinstance(name, str) or not RULE_NAME.match(name):
        raise BadRequest("a rule name is 1 to 64 letters, digits, _ . : or -, starting with a letter or digit")
    try:
        return PriceRule.model_validate(rule).model_dump(exclude_none=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "rule"
        raise BadRequest(f"price rule {name}: {where}: {first['msg']}") from None


def _resolution(value: object) -> str | None:
    if value is None:
        return None
    m = _RESOLUTION.search(str(value).strip().lower())
    return f"{m[1]}p" if m else None


def parameters_of(action: str, params: dict, prompt: str | None, custom_id: str | None,
                  bot_type: str | None = None) -> dict[str, str]:
    """What price rules can match on, read from the task as submitted."""
    found: dict[str, str] = {}
    text = prompt or str(params.get("prompt") or "")
    if m := _VERSION.search(text):
        found["version"] = m[1]
    if m := _NIJI.search(text):
        found["niji"] = m[1] or "default"
    elif bot_type == "NIJI_JOURNEY":
        found["niji"] = "default"
    button = try_parse_custom_id(custom_id) if custom_id else None
    if action == "UPSCALE" and button is not None and (m := _UPSCALE.match(button.kind)):
        if m["kind"]:
            found["upscale"] = f"{m['kind']}_{m['scale'] or '2x'}"
        else:
            found["upscale"] = m["scale"] or "standard"
    if action == "VIDEO":
        resolution = _resolution(params.get("resolution")) or _resolution(params.get("videoType"))
        if resolution:
            found["resolution"] = resolution
        if params.get("motion"):
            found["motion"] = str(params["motion"]).lower()
        found["length"] = "extend" if params.get("action") == "extend" else str(params.get("length") or "base")
    found["mask"] = "yes" if params.get("maskBase64") or params.get("mask") else "no"
    return found


def _matches(rule: dict, action: str, mode: str, parameters: dict[str, str]) -> bool:
    if rule["action"] not in ("*", action):
        return False
    if rule.get("mode") not in (None, mode):
        return False
    for key, wanted in rule.get("match", {}).items():
        have = parameters.get(key)
        if have is None or (wanted != "*" and wanted.casefold() != have.casefold()):
            return False
    return True


def best_rule(rules: dict[str, dict], action: str, mode: str, parameters: dict[str, str]) -> tuple[str, dict] | None:
    """(name, rule) of the rule that prices this task, or None (the action's price table applies)."""
    matching = [(name, rule) for name, rule in rules.items() if _matches(rule, action, mode, parameters)]
    if not matching:
        return None
    return min(matching, key=lambda item: (-item[1].get("priority", 0), -len(item[1].get("match", {})),
                                           item[1]["action"] == "*", item[1].get("mode") is None, item[0]))
