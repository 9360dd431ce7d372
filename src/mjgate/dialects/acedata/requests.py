"""AceData's request bodies, for /docs. Unknown fields are ignored; the routes read the fields
themselves (dialects/acedata/fields.py) so that every mistake is a 400 in AceData's envelope."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mjgate.dialects.acedata.actions import ACTIONS


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Delivery(_Body):
    mode: str | None = Field(None, description="fast, relax or turbo")
    callback_url: str | None = Field(None, description="Receives the answer JSON on each change")
    timeout: float | None = Field(None, description="Seconds to wait for the result (default 300, at most 600)")
    async_: bool | None = Field(None, alias="async", description="Answer at once with the task id")


class ImagineRequest(_Delivery):
    prompt: str | None = Field(None, description="Required for action generate")
    action: str | None = Field("generate", description=f"One of: {', '.join(ACTIONS)}")
    image_id: str | None = Field(None, description="The result to transform (its task_id)")
    mask: str | None = Field(None, description="base64 mask for variation_region")
    translation: bool | None = None
    split_images: bool | None = None
    version: str | None = None
    quality: str | None = None
    hd: bool | None = None


class DescribeRequest(_Delivery):
    image_url: str | None = Field(None, description="A public http(s) URL or a data: URI")
    image_base64: str | None = None


class TasksRequest(_Body):
    action: str | None = Field(None, description="retrieve, retrieve_batch or cancel")
    id: str | None = None
    trace_id: str | None = None
    ids: list[str] | None = None
    trace_ids: list[str] | None = None
    offset: int | None = None
    limit: int | None = None


class SeedRequest(_Body):
    image_id: str
