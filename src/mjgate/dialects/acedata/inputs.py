"""What AceData's bodies name indirectly: images by URL, and prompts that need translating.

An image field may be a data: URI, one of the gateway's own signed image URLs (read internally,
images/own.py), or any other http(s) URL, downloaded under the public-address rule (downloads.py).
"""

from __future__ import annotations

from fastapi import Request

from mjgate.api.payloads import MAX_IMAGE_BYTES, image_base64, text_field
from mjgate.dialects.acedata import fields
from mjgate.downloads import download_image
from mjgate.errors import BadRequest

MAX_IMAGE_PROMPTS = 5  # what midjourney-proxy's base64Array takes


def _called_base(request: Request) -> str:
    """The base URL the client called (not MJGATE_PUBLIC_URL): its own links point there too."""
    return str(request.base_url).rstrip("/")


async def image_from_url(request: Request, value: str, name: str) -> str:
    """A data: URI of the image `value` names (data: URI, our own URL, or a public URL)."""
    if value.startswith("data:"):
        return image_base64(value, name)
    own = await request.app.state.gateway_images.data_uri_of(value, _called_base(request), name)
    if own is not None:
        return own
    return await download_image(value, name)


async def image_field(request: Request, body: dict, name: str, *, required: bool = False,
                      also: tuple[str, ...] = ()) -> str | None:
    """An image given as `name` (a URL or data: URI) or as bare base64 in one of `also`."""
    for alias in also:
        if body.get(alias):
            return image_base64(body[alias], alias)
    value = text_field(body, name, limit=MAX_IMAGE_BYTES * 2).strip()
    if not value:
        if required:
            raise BadRequest(f"{name} is required (an http(s) image URL or a data: URI)")
        return None
    return await image_from_url(request, value, name)


async def own_image_prompts(request: Request, prompt: str) -> tuple[str, list[str]]:
    """The prompt without its leading own image URLs, and those images (images/own.py)."""
    return await request.app.state.gateway_images.own_prompt_images(prompt, _called_base(request),
                                                                    MAX_IMAGE_PROMPTS)


async def english(request: Request, body: dict, prompt: str) -> str | None:
    """The prompt in English when the body asks for `translation` (None when it does not)."""
    if not fields.boolean(body, "translation") or not prompt.strip():
        return None
    return await request.app.state.translator.english(prompt)
