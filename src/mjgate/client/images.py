"""Saving a task's image: written under a temporary name and renamed, so a half-downloaded file
never sits at the destination; a 2x2 grid can be cut into its four pictures (U1..U4 order)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mjgate.client.errors import MjgateError


def default_path(task_id: str) -> Path:
    return Path(f"{task_id}.png")


def split_paths(path: Path) -> list[Path]:
    """fox.png -> fox-1.png .. fox-4.png, numbered as Midjourney numbers the grid (U1..U4)."""
    suffix = path.suffix or ".png"
    return [path.with_name(f"{path.stem}-{i}{suffix}") for i in range(1, 5)]


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[BinaryIO]:
    """A file opened for writing that appears at `path` only once the block has finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    # Not mkstemp: its 0600 would stick to the picture; 0666 lets the umask decide, as for any new file.
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def split_grid(source: Path, path: Path) -> list[Path]:
    """Cut a 2x2 grid image into four files named after `path`; returns them in U1..U4 order."""
    from PIL import Image, UnidentifiedImageError  # only this feature needs Pillow

    try:
        image = Image.open(source)
    except (UnidentifiedImageError, OSError) as exc:
        raise MjgateError(f"the task's image could not be read as a picture: {exc}") from None
    with image:
        width, height = image.size
        if width < 2 or height < 2:
            raise MjgateError(f"the task's image is {width}x{height}: too small to be a 2x2 grid")
        half_w, half_h = width // 2, height // 2
        boxes = [(0, 0, half_w, half_h), (half_w, 0, width, half_h),
                 (0, half_h, half_w, height), (half_w, half_h, width, height)]
        written = []
        for box, target in zip(boxes, split_paths(path)):
            piece = image.crop(box)
            fmt = Image.registered_extensions().get(target.suffix.lower(), "PNG")
            if fmt == "JPEG" and piece.mode not in ("RGB", "L"):
                piece = piece.convert("RGB")
            with atomic_write(target) as handle:
                piece.save(handle, format=fmt)
            written.append(target)
        return written
