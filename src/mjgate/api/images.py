"""The image endpoint of every dialect: GET /mj/image/{mj_id}."""

from __future__ import annotations

from fastapi import APIRouter, Request

from mjgate.auth.relay import authenticate
from mjgate.errors import Forbidden, GatewayError, NotFound
from mjgate.images.proxy import open_image
from mjgate.images.signing import check_image_signature
from mjgate.models import Channel
from mjgate.tasks import repository

router = APIRouter(tags=["images"])


@router.get("/mj/image/{mj_id}", summary="A task's image (signed URL, or the owner's key)")
async def task_image(mj_id: str, request: Request):
    state = request.app.state
    signed = check_image_signature(state.secret_key, mj_id, request.query_params.get("expires"),
                                   request.query_params.get("sig"))
    async with state.db.read() as session:
        task = await repository.get_by_mj_id(session, mj_id[:64])
        if not signed:
            try:
                caller = await authenticate(request, session)
            except GatewayError:
                raise Forbidden("this image URL is not validly signed (or has expired)") from None
            if task is None or caller.user.id != task.user_id:
                raise NotFound(f"task {mj_id[:64]} not found")
        if task is None:
            raise NotFound(f"task {mj_id[:64]} not found")
        channel = await session.get(Channel, task.channel_id) if task.channel_id else None
    copier = state.tasks.image_copier
    if copier is not None and task.stored_image:
        # The gateway's own copy (local file or S3 object); None: the store has nothing, ask the upstream.
        stored = await copier.store.serve(task.stored_image, request.headers)
        if stored is not None:
            return stored
    return await open_image(state.http, task, channel, request.headers)
