"""midjourney-proxy's request bodies, for /docs. Unknown fields are ignored; the routes read the
fields themselves (api/payloads.py) so that every mistake is a code-4 answer in the client's terms."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Common(_Body):
    notifyHook: str | None = Field(None, description="Your callback URL: the task JSON is POSTed on each change")
    state: str | None = Field(None, description="Passed through untouched")


class ImagineRequest(_Common):
    prompt: str
    base64Array: list[str] | None = Field(None, description="Reference images (base64 or data: URIs), at most 5")
    botType: Literal["MID_JOURNEY", "NIJI_JOURNEY"] | None = None


class ChangeRequest(_Common):
    taskId: str
    action: Literal["UPSCALE", "VARIATION", "REROLL"]
    index: int | None = Field(None, ge=1, le=4)


class SimpleChangeRequest(_Common):
    content: str = Field(..., description="'<taskId> U1' (U1-U4, V1-V4 or R)")


class ActionRequest(_Common):
    taskId: str
    customId: str = Field(..., description="One of the task's buttons, e.g. MJ::JOB::upsample::1::<hash>")


class ModalRequest(_Common):
    taskId: str
    prompt: str | None = None
    maskBase64: str | None = None


class DescribeRequest(_Common):
    base64: str | None = None
    base64Array: list[str] | None = None


class BlendRequest(_Common):
    base64Array: list[str] = Field(..., min_length=2, max_length=5)
    dimensions: Literal["PORTRAIT", "SQUARE", "LANDSCAPE"] | None = None


class ShortenRequest(_Common):
    prompt: str


class VideoRequest(_Common):
    prompt: str | None = None
    image: str | None = Field(None, description="First frame (base64)")
    taskId: str | None = Field(None, description="Animate or extend this task instead")
    motion: str | None = None
    action: str | None = None
    index: int | None = None
    noStorage: bool | None = None
    videoType: str | None = None


class EditsRequest(_Common):
    prompt: str
    image: str = Field(..., description="The image: base64, a data: URI or an http(s) URL")
    maskBase64: str | None = None


class RetextureRequest(_Common):
    prompt: str
    image: str = Field(..., description="The image to retexture: base64, a data: URI or an http(s) URL")


class VideoSwapRequest(_Common):
    sourceBase64: str | None = Field(None, description="The face (base64)")
    sourceUrl: str | None = Field(None, description="The face, by URL")
    targetUrl: str = Field(..., description="The video whose faces are swapped")


class UploadRequest(_Common):
    base64Array: list[str] = Field(..., min_length=1, max_length=10)


class SwapFaceRequest(_Common):
    sourceBase64: str
    targetBase64: str


class ListByConditionRequest(_Body):
    ids: list[str] = Field(default_factory=list, max_length=1000)
