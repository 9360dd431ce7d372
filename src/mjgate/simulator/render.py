"""Deterministic pictures for task results, drawn with Pillow.

A picture depends only on its seed text, so the same task always yields the same bytes and an
upscale of cell N looks like cell N of its parent grid.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import textwrap
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from . import mp4

_AR = re.compile(r"--(?:ar|aspect)\s+(\d{1,3})\s*:\s*(\d{1,3})")
_DIMENSIONS = {"PORTRAIT": (2, 3), "SQUARE": (1, 1), "LANDSCAPE": (3, 2)}

# The bytes of a PNG signature followed by the start of an IHDR chunk: enough for a sniffer.
PNG_PREFIX = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"
# Videos: short and small, because every frame is stored uncompressed (see mp4.py).
VIDEO_FPS = 8
VIDEO_FRAMES = 12
VIDEO_LONG_SIDE = {"480p": 128, "720p": 192}
# Where each of a job's four videos drifts to while it slowly zooms in: they must differ.
_DRIFT = [(1, 0), (-1, 0), (0, 1), (0, -1)]


def aspect_of(prompt: str, dimensions: str | None = None) -> tuple[int, int]:
    """Width:height ratio from `--ar W:H` in the prompt or a blend's dimensions."""
    if dimensions:
        return _DIMENSIONS.get(dimensions.upper(), (1, 1))
    m = _AR.search(prompt or "")
    if m:
        w, h = int(m.group(1)), int(m.group(2))
        if w > 0 and h > 0 and max(w, h) / min(w, h) <= 4:
            return w, h
    return 1, 1


def cell_size(image_size: int, aspect: tuple[int, int]) -> tuple[int, int]:
    """One picture's size: the longest side is `image_size`."""
    w, h = aspect
    if w >= h:
        return image_size, max(8, round(image_size * h / w))
    return max(8, round(image_size * w / h)), image_size


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: bitmap font, fixed size
        return ImageFont.load_default()


def _rng(seed_text: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big"))


def draw_cell(seed_text: str, prompt: str, label: str, size: tuple[int, int]) -> Image.Image:
    rng = _rng(seed_text)
    w, h = size
    base = tuple(rng.randrange(30, 226) for _ in range(3))
    img = Image.new("RGB", size, base)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randrange(6, 12)):
        colour = tuple(rng.randrange(256) for _ in range(3))
        x0, y0 = rng.randrange(-w // 4, w), rng.randrange(-h // 4, h)
        x1, y1 = x0 + rng.randrange(w // 8, w // 2 + 1), y0 + rng.randrange(h // 8, h // 2 + 1)
        shape = rng.randrange(3)
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)

    font_px = max(8, min(w, h) // 14)
    font = _font(font_px)
    chars = max(8, int(w / (font_px * 0.55)))
    lines = textwrap.wrap(prompt or "", width=chars)[:3]
    band = (len(lines) + 1) * (font_px + 4) + 4
    draw.rectangle((0, h - band, w, h), fill=(0, 0, 0))
    y = h - band + 4
    for line in [label, *lines]:
        draw.text((6, y), line, fill=(255, 255, 255), font=font)
        y += font_px + 4
    return img


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    # Fast compression: these pictures are test data, and rendering sits on a request path.
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def render_grid(seed_text: str, prompt: str, size: tuple[int, int]) -> bytes:
    w, h = size
    grid = Image.new("RGB", (2 * w, 2 * h))
    for i in range(4):
        cell = draw_cell(f"{seed_text}#{i + 1}", prompt, str(i + 1), size)
        grid.paste(cell, ((i % 2) * w, (i // 2) * h))
    return _png(grid)


def render_single(seed_text: str, index: int, prompt: str, size: tuple[int, int]) -> bytes:
    """Cell `index` (1-4) of the grid seeded by `seed_text`, on its own."""
    return _png(draw_cell(f"{seed_text}#{index}", prompt, f"U{index}", size))


def render_progress(final_png: bytes, percent: int) -> bytes:
    """The finished picture as it looks `percent`% of the way: coarse and blurred early, sharper later.

    Midjourney's intermediate images are the final composition emerging from noise; a picture
    downscaled (less detail) and blurred (less edge), both easing off with progress, reads the same
    and is derived from the final image, so it is seeded exactly like it.
    """
    done = max(1, min(99, percent)) / 100
    img = Image.open(io.BytesIO(final_png)).convert("RGB")
    w, h = img.size
    detail = 0.03 + 0.3 * done  # fraction of the pixels kept
    small = img.resize((max(2, round(w * detail)), max(2, round(h * detail))), Image.Resampling.BILINEAR)
    coarse = small.resize((w, h), Image.Resampling.BILINEAR)
    blurred = coarse.filter(ImageFilter.GaussianBlur(radius=max(0.5, (1 - done) * min(w, h) / 24)))
    return _png(blurred)


def video_size(aspect: tuple[int, int], resolution: str) -> tuple[int, int]:
    """Frame size for a resolution: the longest side fixed, both sides multiples of 16."""
    long_side = VIDEO_LONG_SIDE.get(resolution, VIDEO_LONG_SIDE["480p"])
    w, h = aspect
    blocks = int(long_side * min(w, h) / max(w, h) / mp4.MB + 0.5)  # half up, not to even
    short = max(mp4.MB, blocks * mp4.MB)
    return (long_side, short) if w >= h else (short, long_side)


def render_video(seed_text: str, index: int, prompt: str, aspect: tuple[int, int], resolution: str,
                 variant: int, loop: bool) -> bytes:
    """An MP4 of cell `index` of the grid seeded by `seed_text`, slowly zooming in.

    `variant` (0-3) picks the drift direction so a job's four videos differ; `loop` plays the
    motion forward then back, so the last frame meets the first as a looping video's must.
    """
    size = video_size(aspect, resolution)
    zoom = 1.25
    source = draw_cell(f"{seed_text}#{index}", prompt, f"U{index}", (round(size[0] * zoom), round(size[1] * zoom)))
    dx, dy = _DRIFT[variant % len(_DRIFT)]
    steps = VIDEO_FRAMES // 2 + 1 if loop else VIDEO_FRAMES
    frames = []
    for i in range(steps):
        t = i / max(1, steps - 1)
        scale = 1 + (zoom - 1) * t  # from the whole source to its central 1/1.25: a slow zoom in
        cw, ch = source.width / scale, source.height / scale
        left = (source.width - cw) / 2 * (1 + dx * t)
        top = (source.height - ch) / 2 * (1 + dy * t)
        frames.append(source.resize(size, Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch)))
    if loop:
        frames += frames[-2:0:-1]
    return mp4.encode(frames, VIDEO_FPS)


def sniff_image_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
