"""Deterministic text results: DESCRIBE's four prompts and SHORTEN's variants."""

from __future__ import annotations

import hashlib
import random

KEYCAPS = ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣"]

_SUBJECTS = ["a lighthouse", "a red fox", "an old tram", "a paper boat", "a glass teapot", "a robot gardener"]
_PLACES = ["on a misty shore", "in a neon alley", "under a violet sky", "in a sunlit kitchen", "on a frozen lake"]
_STYLES = ["watercolor", "isometric render", "35mm film photo", "ukiyo-e print", "low-poly art", "oil painting"]
_MOODS = ["calm", "dramatic lighting", "soft pastel palette", "high contrast", "golden hour glow"]


def _numbered(options: list[str]) -> str:
    # Midjourney separates options with a blank line and numbers them with keycap emoji.
    return "\n\n".join(f"{KEYCAPS[i]} {text}" for i, text in enumerate(options))


def describe_prompts(image: bytes) -> str:
    rng = random.Random(hashlib.sha256(image).digest())
    options = [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_PLACES)}, {rng.choice(_STYLES)}, {rng.choice(_MOODS)} --ar 1:1"
        for _ in range(4)
    ]
    return _numbered(options)


def shorten_variants(prompt: str) -> str:
    """Five ever shorter versions of the prompt, keeping its trailing `--` parameters."""
    words, params = [], []
    for token in prompt.split():
        (params if params or token.startswith("--") else words).append(token)
    suffix = (" " + " ".join(params)) if params else ""
    options = []
    for keep in (1.0, 0.8, 0.6, 0.45, 0.3):
        n = max(1, round(len(words) * keep))
        options.append(" ".join(words[:n]) + suffix)
    return _numbered(options)
