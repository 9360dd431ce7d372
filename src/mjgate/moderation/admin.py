"""Operator acts on moderation, shared by the CLI and the admin API: the word list, hits and blocks."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from mjgate.clock import now_ms
from mjgate.errors import BadRequest, NotFound
from mjgate.invalidation import stale_after_commit
from mjgate.moderation import repository
from mjgate.moderation.words import letters_of

MAX_WORD_CHARS = 255
MAX_GROUP_CHARS = 64
DEFAULT_GROUP = "default"


def _group(group: str | None) -> str:
    group = (group or DEFAULT_GROUP).strip()
    if not group or len(group) > MAX_GROUP_CHARS:
        raise BadRequest(f"a group name is 1 to {MAX_GROUP_CHARS} characters")
    return group


def _clean(words: list[str]) -> list[str]:
    cleaned = []
    for word in words:
        word = " ".join(str(word).split())
        if not word or len(word) > MAX_WORD_CHARS:
            raise BadRequest(f"a banned word is 1 to {MAX_WORD_CHARS} characters")
        if not letters_of(word):
            raise BadRequest(f"{word!r} has no letters or digits: it could never match")
        cleaned.append(word)
    if not cleaned:
        raise BadRequest("give at least one word")
    return list(dict.fromkeys(cleaned))


async def list_words(session) -> list[dict]:
    return [{"id": i, "group": g, "word": w} for i, g, w in await repository.all_words(session)]


async def add_words(session, words: list[str], group: str | None = None) -> list[dict]:
    """Add words to a group; words already there are left as they are."""
    group = _group(group)
    existing = {(g, w) for _, g, w in await repository.all_words(session)}
    for word in _clean(words):
        if (group, word) not in existing:
            try:
                await repository.add_word(session, group, word, now_ms())
            except IntegrityError:  # added concurrently: the same result
                pass
    stale_after_commit(session)
    return [w for w in await list_words(session) if w["group"] == group]


async def remove_words(session, words: list[str], group: str | None = None) -> int:
    removed = await repository.remove_words(session, _clean(words), _group(group) if group else None)
    if not removed:
        raise NotFound("none of these words is on the list" + (f" in group {group!r}" if group else ""))
    stale_after_commit(session)
    return removed


def _block(row) -> dict:
    now = now_ms()
    return {"id": row.id, "user_id": row.user_id, "username": row.username, "hits": row.hits,
            "minutes": row.minutes, "created_at": row.created_at, "until": row.until, "lifted_at": row.lifted_at,
            "lifted_by": row.lifted_by, "active": row.lifted_at is None and row.until > now}


async def list_blocks(session, *, active_only: bool = True, limit: int = 100) -> list[dict]:
    rows = await repository.blocks(session, active_at=now_ms() if active_only else None, limit=limit)
    return [_block(r) for r in rows]


async def list_hits(session, user_id: int | None = None, limit: int = 100) -> list[dict]:
    return [{"id": r.id, "user_id": r.user_id, "username": r.username, "word": r.word, "source": r.source,
             "task_id": r.task_id, "created_at": r.created_at}
            for r in await repository.recent_hits(session, user_id, limit)]


async def lift(session, user_id: int, actor_user_id: int | None = None) -> int:
    """Lift the user's blocks in force (the record stays, and still makes a later block longer)."""
    lifted = await repository.lift_blocks(session, user_id, actor_user_id, now_ms())
    if not lifted:
        raise NotFound("this user is not blocked")
    stale_after_commit(session)  # the blocks in force are reference data
    return lifted
