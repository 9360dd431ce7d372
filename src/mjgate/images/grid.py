"""Cutting a finished 2x2 grid into its four images (AceData's `split_images`), with Pillow.

The parts are numbered as Midjourney numbers its U buttons: 1 top left, 2 top right, 3 bottom
left, 4 bottom right. Each is a PNG of one quarter of the grid.
"""

from __future__ import annotations

import io

from PIL import Image

from mjgate.models import Task
from mjgate.tasks.actions import buttons_of

PARTS = (1, 2, 3, 4)


def is_grid(task: Task) -> bool:
    """A result of four images: it offers an upscale for each of them (U1-U4)."""
    indexes = {button.index for _, button in buttons_of(task) if button.action == "UPSCALE"}
    return set(PARTS) <= indexes


def split_grid(data: bytes) -> list[bytes]:
    """The four quarters of a grid image, as PNG bytes, in U1-U4 order."""
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()
        width, height = picture.size
        half_w, half_h = width // 2, height // 2
        boxes = [(0, 0, half_w, half_h), (half_w, 0, width, half_h),
                 (0, half_h, half_w, height), (half_w, half_h, width, height)]
        parts = []
        for box in boxes:
            buffer = io.BytesIO()
            picture.crop(box).save(buffer, "PNG")
            parts.append(buffer.getvalue())
    return parts
