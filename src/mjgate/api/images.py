"""The image endpoint of every dialect: GET /mj/image/{mj_id}."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from mjgate.api.routing import dialect_route
from mjgate.auth.relay import authenticate
from mjgate.dialects.mjproxy.render import error_reply
from mjgate.errors import Forbidden, GatewayError, NotFound
from mjgate.images.proxy import open_image
from mjgate.images.signing import check_image_signature
from mjgate.tasks import repository

# Under /mj/, so its errors read like midjourney-proxy's.
router = APIRouter(tags=["images"], route_class=dialect_route(error_reply))


async def _shown_task(request: Request, mj_id: str, signed_as: str):
    """The task whose image is asked for: by a valid signature of `signed_as`, or for its owner's key."""
    state = request.app.state
    signed = check_image_signature(state.links.verify_keys(), signed_as, request.query_params.get("expires"),
                                   request.query_params.get("sig"))
    if not signed:
        try:
            caller = await authenticate(request)
        except GatewayError:
            raise Forbidden("this image URL is not validly signed (or has expired)") from None
    async with state.db.reading() as session:
        task = await repository.get_by_mj_id(session, mj_id[:64])
    if task is None or (not signed and caller.user.id != task.user_id):
        raise NotFound(f"task {mj_id[:64]} not found")
    return task


@router.get("/mj/image/{mj_id}", summary="A task's image (signed URL, or the owner's key)")
async def task_image(mj_id: str, request: Request):
    state = request.app.state
    task = await _shown_task(request, mj_id, mj_id)
    copier = state.image_copier
    if copier is not None and task.stored_image:
        # The gateway's own copy (local file or S3 object); None: the store has nothing, ask the upstream.
        stored = await copier.store.serve(task.stored_image, request.headers)
        if stored is not None:
            return stored
    channel = (await state.reference.current()).channels.get(task.channel_id)
    return await open_image(state.http, task, channel, request.headers)


@router.get("/mj/image/{mj_id}/{part}", summary="One image of a split grid (1-4; signed URL, or the owner's key)")
async def task_image_part(mj_id: str, part: str, request: Request):
    state = request.app.state
    if part not in ("1", "2", "3", "4"):
        raise NotFound("a grid has parts 1 to 4")
    task = await _shown_task(request, mj_id, f"{mj_id}/{part}")
    data = await state.gateway_images.part(task, int(part))
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})
