"""mjgate: a Midjourney task gateway."""

__version__ = "0.1.0"
