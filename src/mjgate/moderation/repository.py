"""Moderation SQL: the banned-word list, the hits, the blocks."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select, update

from mjgate.models import BannedWord, ModerationHit, User, UserBlock

WORDS = BannedWord.__table__
HITS = ModerationHit.__table__
BLOCKS = UserBlock.__table__


async def all_words(conn) -> list[tuple[int, str, str]]:
    """(id, group, word), by group then word."""
    rows = await conn.execute(select(WORDS.c.id, WORDS.c.group_name, WORDS.c.word)
                              .order_by(WORDS.c.group_name, WORDS.c.word))
    return [tuple(r) for r in rows]


async def add_word(conn, group: str, word: str, now: int) -> None:
    await conn.execute(insert(WORDS).values(group_name=group, word=word, created_at=now))


async def remove_words(conn, words: list[str], group: str | None) -> int:
    query = delete(WORDS).where(WORDS.c.word.in_(words))
    if group is not None:
        query = query.where(WORDS.c.group_name == group)
    return (await conn.execute(query)).rowcount or 0


async def add_hit(conn, user_id: int, word: str, source: str, task_id: int | None, now: int) -> None:
    await conn.execute(insert(HITS).values(user_id=user_id, word=word[:255], source=source, task_id=task_id,
                                           created_at=now))


async def count_hits(conn, user_id: int, since: int) -> int:
    query = select(func.count()).select_from(HITS).where(HITS.c.user_id == user_id, HITS.c.created_at >= since)
    return int(await conn.scalar(query) or 0)


async def recent_hits(conn, user_id: int | None, limit: int) -> list:
    query = (select(HITS, User.username).join(User, User.id == HITS.c.user_id)
             .order_by(HITS.c.id.desc()).limit(limit))
    if user_id is not None:
        query = query.where(HITS.c.user_id == user_id)
    return list(await conn.execute(query))


async def active_block(conn, user_id: int, now: int):
    """The user's block in force (the one ending last), or None."""
    query = (select(BLOCKS).where(BLOCKS.c.user_id == user_id, BLOCKS.c.until > now, BLOCKS.c.lifted_at.is_(None))
             .order_by(BLOCKS.c.until.desc()).limit(1))
    return (await conn.execute(query)).first()


async def blocks_in_force(conn, now: int) -> dict[int, tuple[int, int]]:
    """user id -> (until, hits) of the block in force that ends last, for every blocked user (few)."""
    rows = await conn.execute(select(BLOCKS.c.user_id, BLOCKS.c.until, BLOCKS.c.hits)
                              .where(BLOCKS.c.until > now, BLOCKS.c.lifted_at.is_(None))
                              .order_by(BLOCKS.c.until))
    return {r.user_id: (r.until, r.hits) for r in rows}


async def last_block_start(conn, user_id: int) -> int:
    query = select(func.max(BLOCKS.c.created_at)).where(BLOCKS.c.user_id == user_id)
    return int(await conn.scalar(query) or 0)


async def count_blocks(conn, user_id: int, since: int) -> int:
    query = select(func.count()).select_from(BLOCKS).where(BLOCKS.c.user_id == user_id,
                                                           BLOCKS.c.created_at >= since)
    return int(await conn.scalar(query) or 0)


async def add_block(conn, user_id: int, hits: int, minutes: int, now: int) -> None:
    await conn.execute(insert(BLOCKS).values(user_id=user_id, hits=hits, minutes=minutes, created_at=now,
                                             until=now + minutes * 60_000))


async def lift_blocks(conn, user_id: int, actor_user_id: int | None, now: int) -> int:
    query = (update(BLOCKS).where(BLOCKS.c.user_id == user_id, BLOCKS.c.until > now, BLOCKS.c.lifted_at.is_(None))
             .values(lifted_at=now, lifted_by=actor_user_id))
    return (await conn.execute(query)).rowcount or 0


async def blocks(conn, *, active_at: int | None, limit: int) -> list:
    """Blocks with their user's name, newest first; only those in force at `active_at` when given."""
    query = select(BLOCKS, User.username).join(User, User.id == BLOCKS.c.user_id)
    if active_at is not None:
        query = query.where(BLOCKS.c.until > active_at, BLOCKS.c.lifted_at.is_(None))
    return list(await conn.execute(query.order_by(BLOCKS.c.id.desc()).limit(limit)))
