"""Plain factory functions for tests: real rows through the real services."""

from __future__ import annotations

import itertools
import random

from sqlalchemy import insert

from mjgate.accounts.keys import create_key
from mjgate.accounts.users import create_user
from mjgate.billing.ledger import credit
from mjgate.channels.admin import create_channel
from mjgate.clock import now_ms
from mjgate.db import Database
from mjgate.models import Task
from mjgate.tasks.repository import recount_user_tasks

_seq = itertools.count(1)


async def make_user(db: Database, name: str | None = None, *, role: str = "user", quota: int = 0,
                    password: str | None = None, group: str = "default") -> dict:
    async with db.write() as session:
        created = await create_user(session, name or f"user{next(_seq)}", role=role, password=password, group=group)
        if quota:
            await credit(session, created.user.id, quota, memo="test")
        return {"id": created.user.id, "username": created.user.username, "access_token": created.access_token,
                "headers": {"Authorization": f"Bearer {created.access_token}", "New-Api-User": str(created.user.id)}}


async def make_key(db: Database, user_id: int, *, quota: int | None = None, **options) -> dict:
    from mjgate.models import User

    async with db.write() as session:
        user = await session.get(User, user_id)
        created = await create_key(session, user, quota=quota, **options)
        return {"id": created.key.id, "key": created.secret}


async def make_channel(db: Database, name: str = "ch", base_url: str = "http://127.0.0.1:9", secret: str = "s",
                       **options) -> int:
    async with db.write() as session:
        return (await create_channel(session, name, base_url, secret, **options)).id


def task_row(user_id: int, *, submit_time: int | None = None, channel_id: int | None = None, **fields) -> dict:
    now = submit_time or now_ms()
    n = next(_seq)
    row = {
        "mj_id": fields.pop("mj_id", f"{now}{n:06d}"),
        "user_id": user_id,
        "channel_id": channel_id,
        "action": "IMAGINE",
        "mode": "fast",
        "bot_type": "MID_JOURNEY",
        "code": 1,
        "prompt": f"prompt {n}",
        "prompt_en": f"prompt {n}",
        "description": "Submit success",
        "state": "",
        "status": "SUCCESS",
        "progress": "100%",
        "image_url": "",
        "video_url": "",
        "video_urls": [],
        "buttons": [],
        "properties": {},
        "fail_reason": "",
        "quota": 0,
        "request": {},
        "notify_hook": "",
        "dialect": "mjproxy",
        "submit_time": now,
        "start_time": now + 1000,
        "finish_time": now + 30_000,
        "created_at": now,
        "updated_at": now,
        "poll_attempts": 0,
        "stored_image": "",
    }
    row.update(fields)
    return row


async def insert_tasks(db: Database, rows: list[dict], batch: int = 5000) -> None:
    """Tasks written straight into the table, with their owners' task counts kept as mjgate keeps them."""
    for start in range(0, len(rows), batch):
        async with db.write() as session:
            await session.execute(insert(Task), rows[start:start + batch])
    async with db.write() as session:
        await recount_user_tasks(session)


def shuffled(values: list) -> list:
    values = list(values)
    random.Random(7).shuffle(values)
    return values
