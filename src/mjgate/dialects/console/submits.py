"""Submitting blend, describe, video and edits from the console, as the logged-in user.

Same patterns as the imagine / action / modal routes of dialects/console/routes.py (CSRF guard, the user as
Caller(user, None), the new-api envelope), and the same upstream bodies as the midjourney-proxy
routes of dialects/mjproxy/routes.py build:

* `/submit/blend` — `base64Array` (2 to 5 images) and `dimensions`;
* `/submit/describe` — `base64` (an upload, or an image the gateway downloads from a public URL);
* `/submit/video` — `prompt`, `motion`, a first frame `image` and optionally a last frame
  `endImage`; or `taskId` + `index` to animate a finished image, with `action: "extend"` to
  extend a finished video;
* `/submit/edits` — `prompt`, `image` and optionally `maskBase64` (white where the image changes).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mjgate.api.payloads import image_base64
from mjgate.api.routing import dialect_route
from mjgate.dialects.console.csrf import ConsoleUser, csrf_guard
from mjgate.dialects.console.routes import MAX_PROMPT_CHARS, _answer, _own_for_pressing, _spec
from mjgate.dialects.newapi.render import error_reply
from mjgate.downloads import download_image
from mjgate.errors import BadRequest
from mjgate.models import User
from mjgate.tasks.submission import Caller

router = APIRouter(prefix="/api/console", tags=["console"], dependencies=[Depends(csrf_guard)],
                   route_class=dialect_route(error_reply))

Mode = Literal["fast", "relax", "turbo"]
MAX_URL_CHARS = 4096


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, strict=True)


class BlendBody(_Body):
    images: list[str] = Field(..., min_length=2, max_length=5, description="2 to 5 images: base64 or data: URIs")
    dimensions: Literal["PORTRAIT", "SQUARE", "LANDSCAPE"] = "SQUARE"
    mode: Mode = "fast"


class DescribeBody(_Body):
    image: str | None = Field(None, description="An uploaded image: base64 or a data: URI")
    image_url: str | None = Field(None, max_length=MAX_URL_CHARS,
                                  description="Or an http(s) URL the gateway downloads (public addresses only)")
    mode: Mode = "fast"

    @model_validator(mode="after")
    def _one_source(self):
        if bool(self.image) == bool(self.image_url):
            raise ValueError("give exactly one of image (an upload) or image_url")
        return self


class VideoBody(_Body):
    prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    motion: Literal["low", "high"] = "low"
    image: str | None = Field(None, description="First frame: base64 or a data: URI")
    end_image: str | None = Field(None, description="Last frame (optional, with a first frame)")
    task_id: str | None = Field(None, min_length=1, max_length=64,
                                description="Animate this finished image, or extend this finished video")
    index: int = Field(1, ge=1, le=4, description="Which image of a grid to animate")
    extend: bool = Field(False, description="With task_id: extend that video instead of animating an image")
    mode: Mode = "fast"

    @model_validator(mode="after")
    def _source(self):
        if self.task_id:
            if self.image or self.end_image:
                raise ValueError("give either task_id or frames (image, end_image), not both")
        else:
            if self.extend:
                raise ValueError("extend needs the task_id of the video to extend")
            if self.end_image and not self.image:
                raise ValueError("a last frame (end_image) needs a first frame (image)")
            if not self.prompt and not self.image:
                raise ValueError("a video needs a prompt, a first frame or a task_id")
        return self


class EditsBody(_Body):
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT_CHARS)
    image: str = Field(..., min_length=1, description="The image to edit: base64 or a data: URI")
    mask: str | None = Field(None, description="PNG mask, white where the image may change")
    mode: Mode = "fast"


async def _submit(request: Request, user: User, spec):
    return _answer(request, user, await request.app.state.tasks.submit(Caller(user, None), spec))


@router.post("/submit/blend", summary="Blend 2 to 5 images", status_code=200)
async def submit_blend(request: Request, body: BlendBody, user: ConsoleUser):
    images = [image_base64(value, f"images[{i}]") for i, value in enumerate(body.images)]
    spec = _spec(request, sent=body.model_dump(), mode=body.mode, action="BLEND", operation="blend",
                 params={"base64Array": images, "dimensions": body.dimensions})
    return await _submit(request, user, spec)


@router.post("/submit/describe", summary="Describe an image: four prompts that could have made it")
async def submit_describe(request: Request, body: DescribeBody, user: ConsoleUser):
    if body.image:
        image = image_base64(body.image, "image")
    elif body.image_url.startswith("data:"):
        image = image_base64(body.image_url, "image_url")
    else:
        image = await download_image(body.image_url)  # public addresses only: no SSRF
    spec = _spec(request, sent=body.model_dump(), mode=body.mode, action="DESCRIBE", operation="describe",
                 params={"base64": image})
    return await _submit(request, user, spec)


@router.post("/submit/video", summary="A video from frames or a prompt; animate an image or extend a video")
async def submit_video(request: Request, body: VideoBody, user: ConsoleUser):
    upstream: dict = {"prompt": body.prompt, "motion": body.motion}
    if body.task_id:
        parent = await _own_for_pressing(request, user, body.task_id)
        if body.extend and parent.action != "VIDEO":
            raise BadRequest(f"task {parent.mj_id} is not a video: only videos can be extended")
        upstream["index"] = body.index
        if body.extend:
            upstream["action"] = "extend"
        spec = _spec(request, sent=body.model_dump(), mode=None, action="VIDEO", operation="video",
                     params=upstream, parent_ref=parent.mj_id, prompt=body.prompt or None)
        return await _submit(request, user, spec)
    if body.image:
        upstream["image"] = image_base64(body.image, "image")
    if body.end_image:
        upstream["endImage"] = image_base64(body.end_image, "end_image")
    spec = _spec(request, sent=body.model_dump(), mode=body.mode, action="VIDEO", operation="video",
                 params=upstream, prompt=body.prompt)
    return await _submit(request, user, spec)


@router.post("/submit/edits", summary="Edit an image with a prompt, optionally only inside a painted mask")
async def submit_edits(request: Request, body: EditsBody, user: ConsoleUser):
    upstream = {"prompt": body.prompt, "image": image_base64(body.image, "image")}
    if body.mask:
        upstream["maskBase64"] = image_base64(body.mask, "mask")
    spec = _spec(request, sent=body.model_dump(), mode=body.mode, action="EDITS", operation="edits",
                 params=upstream, prompt=body.prompt)
    return await _submit(request, user, spec)
