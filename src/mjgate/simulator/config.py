"""Knobs of the simulator, shared by the CLI, the HTTP control route and in-process callers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

RATE_FIELDS = ("failure_rate", "error_rate", "malformed_rate", "forget_rate")
MODES = ("fast", "relax", "turbo")


@dataclass
class SimulatorConfig:
    secret: str = ""
    step_seconds: float = 0.5
    steps: int = 4
    start_delay_seconds: float = 0.2
    failure_rate: float = 0.0
    error_rate: float = 0.0
    malformed_rate: float = 0.0
    slow_seconds: float = 0.0
    forget_rate: float = 0.0
    core_size: int = 3
    queue_size: int = 10
    first_queued_success: bool = False
    banned_words: list[str] = field(default_factory=lambda: ["nsfw-banned"])
    image_size: int = 256
    notify: bool = True
    seed: int | None = None
    public_base_url: str | None = None
    default_mode: str = "fast"
    no_fast_hours: bool = False
    fast_hours: float | None = None
    cancel_supported: bool = True
    progress_images: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in RATE_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        for name in ("step_seconds", "start_delay_seconds", "slow_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.steps < 0 or self.queue_size < 0:
            raise ValueError("steps and queue_size must not be negative")
        if self.core_size < 0:
            # 0 is allowed: an upstream with no free account, refusing everything (23) once queue_size is 0 too.
            raise ValueError("core_size must not be negative")
        if self.default_mode not in MODES:
            raise ValueError(f"default_mode must be one of {', '.join(MODES)}, got {self.default_mode!r}")
        if self.fast_hours is not None and self.fast_hours < 0:
            raise ValueError("fast_hours must not be negative")
        # Bounded so a typo cannot make every image request render for seconds.
        if not 16 <= self.image_size <= 2048:
            raise ValueError("image_size must be between 16 and 2048")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def updated(self, changes: dict[str, Any]) -> SimulatorConfig:
        """A new config with `changes` applied; raises ValueError naming the bad knob."""
        if not isinstance(changes, dict):
            raise ValueError("config must be a JSON object")
        known = {f.name: f for f in dataclasses.fields(self)}
        values = self.to_dict()
        for key, raw in changes.items():
            if key not in known:
                raise ValueError(f"unknown knob {key!r}; known: {', '.join(sorted(known))}")
            values[key] = coerce(key, raw, values[key])
        return SimulatorConfig(**values)


def coerce(name: str, raw: Any, current: Any) -> Any:
    """Convert a JSON or command-line value to the type the knob holds."""
    kind = FIELD_KINDS[name]
    try:
        if raw is None:
            if kind in ("opt_int", "opt_str", "opt_float"):
                return None
            raise ValueError
        if kind == "bool":
            if isinstance(raw, str):
                if raw.lower() in ("1", "true", "yes", "on"):
                    return True
                if raw.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(raw)
        if kind == "words":
            if isinstance(raw, str):
                return [w.strip() for w in raw.split(",") if w.strip()]
            if isinstance(raw, list) and all(isinstance(w, str) for w in raw):
                return list(raw)
            raise ValueError
        if isinstance(raw, bool):
            raise ValueError  # true/false is almost certainly a mistake for a number or text
        if kind in ("float", "opt_float"):
            return float(raw)
        if kind in ("int", "opt_int"):
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ValueError(f"bad value for {name}: {raw!r} (current {current!r})") from None


# How each annotation is read from JSON or the command line; a new knob with another type
# fails here, at import, rather than on its first use.
_KIND_OF_ANNOTATION = {
    "str": "str",
    "float": "float",
    "int": "int",
    "bool": "bool",
    "list[str]": "words",
    "int | None": "opt_int",
    "float | None": "opt_float",
    "str | None": "opt_str",
}
FIELD_KINDS = {f.name: _KIND_OF_ANNOTATION[f.type] for f in dataclasses.fields(SimulatorConfig)}
