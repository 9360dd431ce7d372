"""Admin API for moderation: the banned-word list, users' hits, and blocks (seen and lifted).

GET/POST /api/admin/banned-words, POST /api/admin/banned-words/remove (POST: the console's CSRF guard
wants a JSON body on every change),
GET /api/admin/moderation/hits, GET /api/admin/moderation/blocks, POST /api/admin/users/{user_id}/unblock.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mjgate.api.routing import dialect_route
from mjgate.dialects.admin.routes import Admin, Id
from mjgate.dialects.console.csrf import csrf_guard, ok
from mjgate.dialects.newapi.render import error_reply
from mjgate.moderation import admin as moderation
from mjgate.moderation.admin import MAX_GROUP_CHARS, MAX_WORD_CHARS

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(csrf_guard)],
                   route_class=dialect_route(error_reply))

Limit = Annotated[int, Query(ge=1, le=1000)]


class Words(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)
    words: list[Annotated[str, Field(min_length=1, max_length=MAX_WORD_CHARS)]] = Field(..., min_length=1,
                                                                                       max_length=1000)
    group: str | None = Field(None, min_length=1, max_length=MAX_GROUP_CHARS,
                              description="Adding: the group (default \"default\"); removing: only from this group")


@router.get("/banned-words", summary="The banned-word list, by group")
async def list_banned_words(request: Request, admin: Admin):
    async with request.app.state.db.read() as session:
        return ok({"items": await moderation.list_words(session)})


@router.post("/banned-words", summary="Add banned words to a group (case and punctuation do not matter)",
             status_code=201)
async def add_banned_words(request: Request, admin: Admin, body: Words):
    async with request.app.state.db.write() as session:
        items = await moderation.add_words(session, body.words, body.group)
    return ok({"items": items}, status=201)


@router.post("/banned-words/remove", summary="Remove banned words (from one group, or from all)")
async def remove_banned_words(request: Request, admin: Admin, body: Words):
    async with request.app.state.db.write() as session:
        return ok({"removed": await moderation.remove_words(session, body.words, body.group)})


@router.get("/moderation/hits", summary="Prompts refused for banned words, newest first")
async def moderation_hits(request: Request, admin: Admin,
                          user_id: Annotated[int | None, Query(ge=1, le=2**62)] = None, limit: Limit = 100):
    async with request.app.state.db.read() as session:
        return ok({"items": await moderation.list_hits(session, user_id, limit)})


@router.get("/moderation/blocks", summary="Users blocked for banned-word hits (in force, or all with all=true)")
async def moderation_blocks(request: Request, admin: Admin, all: bool = False, limit: Limit = 100):
    async with request.app.state.db.read() as session:
        return ok({"items": await moderation.list_blocks(session, active_only=not all, limit=limit)})


@router.post("/users/{user_id}/unblock", summary="Lift a user's moderation block now")
async def unblock_user(request: Request, admin: Admin, user_id: Id):
    async with request.app.state.db.write() as session:
        return ok({"lifted": await moderation.lift(session, user_id, admin.id)})
