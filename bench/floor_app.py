"""The raw-driver floor for bench/floor.py: a bare Starlette app doing the gateway's hot-path work
with the least code that is still correct, on the gateway's own migrated schema and data.

No ORM, no FastAPI, no mjgate import: asyncpg / aiosqlite / asyncmy straight, a tiny pool of its
own, one aiohttp session for the upstream, and the same JSON shapes midjourney-proxy and new-api
clients get from mjgate (src/mjgate/tasks/views.py mjproxy_task_json, src/mjgate/api/newapi.py
_item). What it leaves out on purpose is what a floor can cache or skip: channels and prices are
read once at start-up, there is no poller, no event bus, no webhook outbox, no rate limiting.

Served by bench/floor.py with the same granian configuration `mjgate serve` uses; configured by
environment variables (FLOOR_*, see Config). Not a benchmark itself: no __main__ guard, so
bench/run.sh does not run it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
import traceback
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

IMAGINE_PRICE = 50_000  # 0.1 USD x 500,000 quota units: mjgate's default mj_imagine price, group and mode ratio 1
IMAGE_URL_TTL_S = 7 * 24 * 3600  # mjgate's default MJGATE_IMAGE_URL_TTL_S
POLL_FAST_MS = 2_000  # mjgate's tasks/transitions.py: first poll after acceptance
SUBMIT_GRACE_MS = 120_000  # and before it
CHUNK_BYTES = 64 * 1024
MJ_ID_ATTEMPTS = 5
ACCEPTED = {1, 21, 22}
SQLITE_BUSY_TIMEOUT_MS = 30_000
# The timeouts mjgate's upstream client and image relay use (upstream/client.py, images/proxy.py).
SUBMIT_TIMEOUT = aiohttp.ClientTimeout(total=30)
IMAGE_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)
SQLITE_READERS = 4
POOL_SIZE = 10

# What the renderers read: a task's public fields (never all 40 columns).
TASK_COLUMNS = ("id, mj_id, user_id, action, mode, bot_type, code, prompt, prompt_en, description, state, status, "
                "progress, image_url, stored_image, video_url, video_urls, buttons, properties, fail_reason, quota, "
                "refunded_at, request, submit_time, start_time, finish_time")
TASK_FIELDS = [c.strip() for c in TASK_COLUMNS.split(",")]
JSON_FIELDS = ("video_urls", "buttons", "properties", "request")


@dataclass
class Config:
    database_url: str
    secret_key: str  # the image-URL key, derived from the master as mjgate's auth/keyring.py does
    upstream_url: str
    upstream_secret: str
    channel_id: int

    @classmethod
    def from_env(cls) -> Config:
        master = os.environ["FLOOR_SECRET_KEY"]
        image_key = hmac.new(master.encode(), b"mjgate:image-url:v1", hashlib.sha256).hexdigest()
        return cls(os.environ["FLOOR_DATABASE_URL"], image_key,
                   os.environ["FLOOR_UPSTREAM_URL"].rstrip("/"), os.environ.get("FLOOR_UPSTREAM_SECRET", ""),
                   int(os.environ["FLOOR_CHANNEL_ID"]))


def now_ms() -> int:
    return int(time.time() * 1000)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def signed_image_path(secret_key: str, mj_id: str, ttl_s: int = IMAGE_URL_TTL_S) -> str:
    """mjgate's images/signing.py scheme: HMAC-SHA256 over image:{mj_id}:{expires}, expiry rounded up to the hour."""
    expires_s = ((now_ms() // 1000 + ttl_s) // 3600 + 1) * 3600
    return f"/mj/image/{mj_id}?" + urlencode({"expires": expires_s, "sig": _sign(secret_key, mj_id, expires_s)})


def _sign(secret_key: str, mj_id: str, expires_s: int) -> str:
    mac = hmac.new(secret_key.encode(), f"image:{mj_id}:{expires_s}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


# ---------------------------------------------------------------------------------------------
# The three drivers behind one small interface: read(sql, args) -> rows as dicts; write(fn) runs
# fn(tx) in one transaction where tx.execute(sql, args) -> rowcount and tx.insert(sql, args) -> id.
# SQL is written once with ? placeholders; PostgreSQL's $n and MySQL's %s are derived from it.


def _pg_sql(sql: str) -> str:
    parts = sql.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


class PgStore:
    unique_error: type[Exception]

    def __init__(self, url: str):
        self.url = url.replace("postgresql+asyncpg://", "postgresql://")

    async def open(self) -> None:
        import asyncpg

        self.unique_error = asyncpg.UniqueViolationError
        self.pool = await asyncpg.create_pool(self.url, min_size=POOL_SIZE, max_size=POOL_SIZE)

    async def close(self) -> None:
        await self.pool.close()

    async def read(self, sql: str, *args) -> list[dict]:
        async with self.pool.acquire() as conn:
            return [dict(r) for r in await conn.fetch(_pg_sql(sql), *args)]

    async def write(self, fn):
        async with self.pool.acquire() as conn, conn.transaction():
            return await fn(_PgTx(conn))

    def in_list(self, column: str, values: list) -> tuple[str, list]:
        # One prepared statement for any number of ids (IN (...) would prepare one per length).
        return f"{column} = ANY(?::text[])", [values]


class _PgTx:
    def __init__(self, conn):
        self.conn = conn

    async def execute(self, sql: str, *args) -> int:
        status = await self.conn.execute(_pg_sql(sql), *args)  # e.g. "UPDATE 1"
        return int(status.rsplit(" ", 1)[-1])

    async def insert(self, sql: str, *args) -> int:
        return await self.conn.fetchval(_pg_sql(sql) + " RETURNING id", *args)


class SqliteStore:
    """One writer connection (transactions BEGIN IMMEDIATE, one at a time) and a few read-only readers,
    with the pragmas src/mjgate/db/engine.py sets."""

    unique_error = sqlite3.IntegrityError

    def __init__(self, url: str):
        self.path = url.split("///", 1)[1]

    async def _connect(self, writer: bool):
        import aiosqlite

        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        for pragma in ("journal_mode=WAL", f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}", "synchronous=NORMAL",
                       "foreign_keys=ON", *(() if writer else ("query_only=ON",))):
            await conn.execute(f"PRAGMA {pragma}")
        return conn

    async def open(self) -> None:
        self.writer = await self._connect(True)
        self.write_lock = asyncio.Lock()
        self.readers: asyncio.Queue = asyncio.Queue()
        for _ in range(SQLITE_READERS):
            self.readers.put_nowait(await self._connect(False))

    async def close(self) -> None:
        await self.writer.close()
        while not self.readers.empty():
            await self.readers.get_nowait().close()

    async def read(self, sql: str, *args) -> list[dict]:
        conn = await self.readers.get()
        try:
            async with conn.execute(sql, args) as cursor:
                return [dict(r) for r in await cursor.fetchall()]
        finally:
            self.readers.put_nowait(conn)

    async def write(self, fn):
        async with self.write_lock:
            await self.writer.execute("BEGIN IMMEDIATE")
            try:
                result = await fn(_SqliteTx(self.writer))
            except BaseException:
                await self.writer.execute("ROLLBACK")
                raise
            await self.writer.execute("COMMIT")
            return result

    def in_list(self, column: str, values: list) -> tuple[str, list]:
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)


class _SqliteTx:
    def __init__(self, conn):
        self.conn = conn

    async def execute(self, sql: str, *args) -> int:
        async with self.conn.execute(sql, args) as cursor:
            return cursor.rowcount

    async def insert(self, sql: str, *args) -> int:
        async with self.conn.execute(sql, args) as cursor:
            return cursor.lastrowid


def _my_sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class MysqlStore:
    """MariaDB/MySQL through asyncmy, READ COMMITTED like mjgate's engine."""

    def __init__(self, url: str):
        self.url = urlsplit(url.replace("+asyncmy", ""))

    async def open(self) -> None:
        import asyncmy
        from asyncmy.errors import IntegrityError

        self.unique_error = IntegrityError
        u = self.url
        self.pool = await asyncmy.create_pool(
            host=u.hostname or "127.0.0.1", port=u.port or 3306, user=u.username or "root", password=u.password or "",
            db=u.path.lstrip("/"), minsize=POOL_SIZE, maxsize=POOL_SIZE, autocommit=True, charset="utf8mb4",
            init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()

    async def read(self, sql: str, *args) -> list[dict]:
        from asyncmy.cursors import DictCursor

        async with self.pool.acquire() as conn, conn.cursor(DictCursor) as cursor:
            await cursor.execute(_my_sql(sql), args)
            return list(await cursor.fetchall())

    async def write(self, fn):
        async with self.pool.acquire() as conn:
            await conn.begin()
            try:
                async with conn.cursor() as cursor:
                    result = await fn(_MysqlTx(cursor))
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()
            return result

    def in_list(self, column: str, values: list) -> tuple[str, list]:
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)


class _MysqlTx:
    def __init__(self, cursor):
        self.cursor = cursor

    async def execute(self, sql: str, *args) -> int:
        return await self.cursor.execute(_my_sql(sql), args)

    async def insert(self, sql: str, *args) -> int:
        await self.cursor.execute(_my_sql(sql), args)
        return self.cursor.lastrowid


def make_store(url: str):
    scheme = url.split(":", 1)[0]
    if scheme.startswith("sqlite"):
        return SqliteStore(url)
    if scheme.startswith("postgres"):
        return PgStore(url)
    if scheme.startswith(("mysql", "mariadb")):
        return MysqlStore(url)
    raise ValueError(f"unsupported database URL {url!r}")


# ---------------------------------------------------------------------------------------------
# Rendering, field for field what mjgate answers


def _decoded(row: dict) -> dict:
    for name in JSON_FIELDS:
        value = row.get(name)
        if isinstance(value, (str, bytes)):
            row[name] = json.loads(value)
    return row


def _image_url(row: dict, base: str, secret_key: str) -> str:
    if not (row["image_url"] or row["stored_image"]):
        return ""
    return base + signed_image_path(secret_key, row["mj_id"])


def mjproxy_json(row: dict, base: str, secret_key: str) -> dict:
    properties = row["properties"] or {}
    return {
        "id": row["mj_id"],
        "action": row["action"],
        "customId": (row["request"] or {}).get("customId", ""),
        "botType": row["bot_type"],
        "mode": row["mode"].upper(),
        "prompt": row["prompt"],
        "promptEn": row["prompt_en"],
        "description": row["description"],
        "state": row["state"],
        "submitTime": row["submit_time"],
        "startTime": row["start_time"],
        "finishTime": row["finish_time"],
        "imageUrl": _image_url(row, base, secret_key),
        "videoUrl": row["video_url"],
        "videoUrls": [{"url": u} for u in row["video_urls"] or []],
        "status": row["status"],
        "progress": row["progress"],
        "failReason": row["fail_reason"],
        "buttons": row["buttons"] or [],
        "properties": {
            "finalPrompt": properties.get("finalPrompt", row["prompt_en"]),
            "finalZhPrompt": properties.get("finalZhPrompt", ""),
            **{k: v for k, v in properties.items() if k not in ("finalPrompt", "finalZhPrompt")},
        },
    }


def newapi_item(row: dict, base: str, secret_key: str) -> dict:
    return {
        "id": row["id"],
        "mj_id": row["mj_id"],
        "action": row["action"],
        "prompt": row["prompt"],
        "prompt_en": row["prompt_en"],
        "status": row["status"],
        "progress": row["progress"],
        "image_url": _image_url(row, base, secret_key),
        "video_url": row["video_url"],
        "video_urls": json.dumps(row["video_urls"] or [], ensure_ascii=False),
        "submit_time": (row["submit_time"] or 0) // 1000,
        "start_time": (row["start_time"] or 0) // 1000,
        "finish_time": (row["finish_time"] or 0) // 1000,
        "fail_reason": row["fail_reason"],
        "quota": row["quota"],
        "code": row["code"],
        "description": row["description"],
        "state": row["state"],
        "mode": row["mode"],
        "buttons": row["buttons"] or [],
        "properties": row["properties"] or {},
        "refunded": row["refunded_at"] is not None,
    }


def mj_reply(code: int, description: str, result=None, properties: dict | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "description": description, "result": result, "properties": properties or {}})


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# ---------------------------------------------------------------------------------------------
# Routes


KEY_SQL = ("SELECT k.id, k.user_id, k.status, k.expires_at, k.unlimited, u.status AS user_status "
           "FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?")


async def caller_of(request: Request) -> dict | None:
    """The relay key from Authorization: Bearer or mj-api-secret, with its owner; None if not valid."""
    auth = request.headers.get("authorization", "").strip()
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else auth
    if not token or token == "midjourney-proxy":
        token = request.headers.get("mj-api-secret", "").strip()
    if not token:
        return None
    rows = await request.app.state.store.read(KEY_SQL, sha256_hex(token))
    if not rows:
        return None
    key = rows[0]
    if key["status"] != "enabled" or key["user_status"] != "enabled":
        return None
    if key["expires_at"] is not None and key["expires_at"] <= now_ms():
        return None
    return key


def unauthorized() -> JSONResponse:
    return JSONResponse({"error": {"code": "unauthorized", "message": "invalid API key"}}, status_code=401)


async def submit_imagine(request: Request):
    caller = await caller_of(request)
    if caller is None:
        return unauthorized()
    try:
        body = await request.json()
    except ValueError:
        return mj_reply(4, "the body must be a JSON object")
    prompt = body.get("prompt") if isinstance(body, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        return mj_reply(4, "prompt is required")
    bot = body.get("botType") or "MID_JOURNEY"
    state, store, cfg = request.app.state, request.app.state.store, request.app.state.config
    price = IMAGINE_PRICE
    user_id, key_id = caller["user_id"], caller["id"]
    request_json = json.dumps(body, ensure_ascii=False)

    async def reserve(tx):
        # The balance and the key's limit are taken by conditional UPDATEs (never read-modify-write),
        # the task and its ledger row are written in the same transaction.
        counted = ", task_count = task_count + 1" if request.app.state.counts_tasks else ""
        if await tx.execute(f"UPDATE users SET quota = quota - ?, used_quota = used_quota + ?{counted} "
                            "WHERE id = ? AND quota >= ?", price, price, user_id, price) != 1:
            return None
        if caller["unlimited"]:
            taken = await tx.execute("UPDATE api_keys SET used_quota = used_quota + ? WHERE id = ?", price, key_id)
        else:
            taken = await tx.execute("UPDATE api_keys SET used_quota = used_quota + ?, remain_quota = remain_quota - ? "
                                     "WHERE id = ? AND remain_quota >= ?", price, price, key_id, price)
        if taken != 1:
            raise QuotaRefused()
        now = now_ms()
        mj_id = f"{now}{secrets.randbelow(1000):03d}"
        task_id = await tx.insert(
            "INSERT INTO tasks (mj_id, user_id, token_id, action, mode, bot_type, prompt, prompt_en, description, "
            "state, status, progress, image_url, video_url, video_urls, buttons, properties, fail_reason, quota, "
            "request, notify_hook, dialect, submit_time, created_at, updated_at, next_poll_at, poll_attempts, "
            "stored_image, upstream_missing, public_base) VALUES "
            "(?, ?, ?, 'IMAGINE', 'fast', ?, ?, ?, '', '', 'NOT_START', '0%', '', '', '[]', '[]', '{}', '', ?, "
            "?, '', 'mjproxy', ?, ?, ?, ?, 0, '', 0, ?)",
            mj_id, user_id, key_id, bot, prompt, prompt, price, request_json, now, now, now,
            now + SUBMIT_GRACE_MS, base_url(request)[:255])
        await tx.insert("INSERT INTO quota_ledger (user_id, token_id, task_id, kind, amount, memo, created_at) "
                        "VALUES (?, ?, ?, 'charge', ?, '', ?)", user_id, key_id, task_id, -price, now)
        return task_id, mj_id

    reserved = None
    try:
        for attempt in range(MJ_ID_ATTEMPTS):
            try:
                reserved = await store.write(reserve)
                break
            except store.unique_error:  # an mj_id clash: a new id in a new transaction
                if attempt == MJ_ID_ATTEMPTS - 1:
                    raise
    except QuotaRefused:
        reserved = None
    if reserved is None:
        return mj_reply(4, "insufficient quota")
    task_id, mj_id = reserved

    try:
        async with state.http.post(f"{cfg.upstream_url}/mj/submit/imagine",
                                   json={"prompt": prompt, "base64Array": [], "botType": bot},
                                   headers={"mj-api-secret": cfg.upstream_secret}, timeout=SUBMIT_TIMEOUT) as resp:
            answer = json.loads(await resp.read())
        code = int(answer["code"])
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError, KeyError, TypeError) as exc:
        answer, code = {"description": f"upstream unavailable: {type(exc).__name__}"}, 9
    description = str(answer.get("description") or "")
    if code not in ACCEPTED or not answer.get("result"):
        await store.write(lambda tx: release(tx, task_id, user_id, key_id, caller["unlimited"], price, code,
                                             description))
        return mj_reply(code if code not in ACCEPTED else 9, description or "refused by the upstream")
    upstream_props = answer.get("properties") if isinstance(answer.get("properties"), dict) else {}
    properties = {k: v for k, v in upstream_props.items() if k == "numberOfQueues"}
    now = now_ms()
    description = description or "Submit success"

    async def accept(tx):
        await tx.execute("UPDATE tasks SET channel_id = ?, upstream_id = ?, code = ?, status = ?, description = ?, "
                         "updated_at = ?, next_poll_at = ?, properties = ? WHERE id = ?",
                         cfg.channel_id, str(answer["result"]), code, "MODAL" if code == 21 else "SUBMITTED",
                         description, now, now + POLL_FAST_MS, json.dumps(properties), task_id)

    await store.write(accept)
    if code == 22:
        ahead = properties.get("numberOfQueues")
        description = answer.get("description") or (f"In queue, {ahead} tasks ahead" if ahead is not None else "In queue")
    return mj_reply(1, description, mj_id, properties)


class QuotaRefused(Exception):
    pass


async def release(tx, task_id: int, user_id: int, key_id: int, unlimited: bool, price: int, code: int,
                  description: str) -> None:
    """The upstream refused: the task fails and its charge goes back, once, with a ledger row."""
    now = now_ms()
    reason = f"refused by the upstream (code {code}): {description}"[:2000]
    await tx.execute("UPDATE tasks SET code = ?, status = 'FAILURE', progress = '', fail_reason = ?, description = ?, "
                     "finish_time = ?, updated_at = ?, next_poll_at = NULL WHERE id = ? AND code IS NULL",
                     code, reason, description[:2000], now, now, task_id)
    if await tx.execute("UPDATE tasks SET refunded_at = ? WHERE id = ? AND refunded_at IS NULL", now, task_id) != 1:
        return
    await tx.execute("UPDATE users SET quota = quota + ?, used_quota = used_quota - ? WHERE id = ?",
                     price, price, user_id)
    if unlimited:
        await tx.execute("UPDATE api_keys SET used_quota = used_quota - ? WHERE id = ?", price, key_id)
    else:
        await tx.execute("UPDATE api_keys SET used_quota = used_quota - ?, remain_quota = remain_quota + ? "
                         "WHERE id = ?", price, price, key_id)
    await tx.insert("INSERT INTO quota_ledger (user_id, token_id, task_id, kind, amount, memo, created_at) "
                    "VALUES (?, ?, ?, 'release', ?, ?, ?)", user_id, key_id, task_id, price, reason[:500], now)


async def fetch_task(request: Request):
    caller = await caller_of(request)
    if caller is None:
        return unauthorized()
    mj_id = request.path_params["task_id"][:64]
    rows = await request.app.state.store.read(f"SELECT {TASK_COLUMNS} FROM tasks WHERE mj_id = ?", mj_id)
    if not rows or rows[0]["user_id"] != caller["user_id"]:
        return JSONResponse({"error": {"code": "not_found", "message": f"task {mj_id} not found"}}, status_code=404)
    return JSONResponse(mjproxy_json(_decoded(rows[0]), base_url(request), request.app.state.config.secret_key))


async def list_by_condition(request: Request):
    caller = await caller_of(request)
    if caller is None:
        return unauthorized()
    body = await request.json()
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or len(ids) > 1000:
        return JSONResponse({"error": {"code": "bad_request", "message": "ids must be an array"}}, status_code=400)
    wanted = list(dict.fromkeys(str(i) for i in ids))
    if not wanted:
        return JSONResponse([])
    store = request.app.state.store
    condition, args = store.in_list("mj_id", wanted)
    rows = await store.read(f"SELECT {TASK_COLUMNS} FROM tasks WHERE {condition} AND user_id = ?",
                            *args, caller["user_id"])
    by_id = {r["mj_id"]: r for r in rows}
    base, secret_key = base_url(request), request.app.state.config.secret_key
    return JSONResponse([mjproxy_json(_decoded(by_id[i]), base, secret_key) for i in wanted if i in by_id])


PAGE_SQL = (f"SELECT {', '.join('t.' + c for c in TASK_FIELDS)} FROM tasks t JOIN "
            "(SELECT id FROM tasks WHERE user_id = ? ORDER BY submit_time DESC, id DESC LIMIT ? OFFSET ?) page "
            "ON t.id = page.id ORDER BY t.submit_time DESC, t.id DESC")


async def own_tasks(request: Request):
    """GET /api/mj/self: access token + New-Api-User, then the count and the page, as mjgate runs them."""
    auth = request.headers.get("authorization", "").strip()
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else auth
    claimed = request.headers.get("new-api-user", "").strip()
    store = request.app.state.store
    # A schema with users.task_count (mjgate's migration 0004) keeps the total there; before it, it is counted.
    counted = request.app.state.counts_tasks
    columns = "id, username, status, task_count" if counted else "id, username, status"
    rows = await store.read(f"SELECT {columns} FROM users WHERE access_token_hash = ?", sha256_hex(token)) if token else []
    if not rows or not claimed.isdigit() or int(claimed) != rows[0]["id"] or rows[0]["status"] != "enabled":
        return JSONResponse({"success": False, "message": "invalid access token"}, status_code=401)
    user_id = rows[0]["id"]
    try:
        page = max(int(request.query_params.get("p") or 1), 1)
        size = int(request.query_params.get("page_size") or 20)
    except ValueError:
        return JSONResponse({"success": False, "message": "p and page_size must be integers"}, status_code=400)
    size = 20 if size < 1 else min(size, 100)
    total = rows[0]["task_count"] if counted else (
        await store.read("SELECT count(*) AS n FROM tasks WHERE user_id = ?", user_id))[0]["n"]
    offset = (page - 1) * size
    items = []
    if offset < total:
        base, secret_key = base_url(request), request.app.state.config.secret_key
        items = [{**newapi_item(_decoded(r), base, secret_key), "username": rows[0]["username"]}
                 for r in await store.read(PAGE_SQL, user_id, size, offset)]
    return JSONResponse({"success": True, "message": "",
                         "data": {"items": items, "total": int(total), "page": page, "page_size": size}})


async def task_image(request: Request):
    """GET /mj/image/{mj_id}?expires&sig: check the signature, find the image, relay it in 64 KB chunks."""
    mj_id = request.path_params["mj_id"][:64]
    expires, sig = request.query_params.get("expires", ""), request.query_params.get("sig", "")
    secret_key = request.app.state.config.secret_key
    if (not expires.isdigit() or int(expires) < now_ms() // 1000
            or not hmac.compare_digest(_sign(secret_key, mj_id, int(expires)), sig)):
        return JSONResponse({"error": {"code": "forbidden", "message": "not validly signed"}}, status_code=403)
    rows = await request.app.state.store.read(
        "SELECT t.image_url, c.base_url FROM tasks t LEFT JOIN channels c ON c.id = t.channel_id WHERE t.mj_id = ?",
        mj_id)
    if not rows or not rows[0]["image_url"]:
        return JSONResponse({"error": {"code": "not_found", "message": "no image"}}, status_code=404)
    image_url, channel_base = rows[0]["image_url"], rows[0]["base_url"] or ""
    if urlsplit(image_url).netloc != urlsplit(channel_base).netloc:  # only the channel's own host (no SSRF)
        return JSONResponse({"error": {"code": "forbidden", "message": "image host not allowed"}}, status_code=403)
    upstream = await request.app.state.http.get(image_url, allow_redirects=False, timeout=IMAGE_TIMEOUT)
    if upstream.status != 200:
        upstream.release()
        return JSONResponse({"error": {"code": "api_error", "message": f"upstream {upstream.status}"}},
                            status_code=502)

    headers = [(b"content-type", upstream.headers.get("content-type", "image/png").encode())]
    if "content-length" in upstream.headers:
        headers.append((b"content-length", upstream.headers["content-length"].encode()))
    return RelayedImage(upstream, headers)


class RelayedImage:
    """The least an ASGI relay can do: one send per 64 KB chunk, the upstream closed however it ends."""

    def __init__(self, upstream: aiohttp.ClientResponse, headers: list):
        self.upstream = upstream
        self.headers = headers

    async def __call__(self, scope, receive, send) -> None:
        upstream = self.upstream

        async def watch_disconnect() -> None:  # a client that leaves closes the upstream at once
            while (await receive())["type"] != "http.disconnect":
                pass
            upstream.close()

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            async for chunk in upstream.content.iter_chunked(CHUNK_BYTES):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:
            pass  # the client went away (each server raises its own type)
        finally:
            watcher.cancel()
            upstream.close()


async def crashed(request: Request, exc: Exception) -> JSONResponse:
    # Printed, so bench/floor.py can show why a request failed (its log is the server's output).
    traceback.print_exception(exc)
    return JSONResponse({"error": {"code": "internal", "message": repr(exc)[:300]}}, status_code=500)


async def healthz(request: Request):
    # The event loop in use, so bench/floor.py can say which one each server ran on.
    return JSONResponse({"status": "ok", "loop": type(asyncio.get_running_loop()).__module__})


def create_app() -> Starlette:
    config = Config.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette):
        app.state.config = config
        app.state.store = make_store(config.database_url)
        await app.state.store.open()
        try:
            await app.state.store.read("SELECT task_count FROM users WHERE id = ?", 0)
            app.state.counts_tasks = True
        except Exception:
            app.state.counts_tasks = False
        app.state.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, limit_per_host=100))
        try:
            yield
        finally:
            await app.state.http.close()
            await app.state.store.close()

    return Starlette(routes=[
        Route("/healthz", healthz),
        Route("/mj/submit/imagine", submit_imagine, methods=["POST"]),
        Route("/mj/task/{task_id}/fetch", fetch_task),
        Route("/mj/task/list-by-condition", list_by_condition, methods=["POST"]),
        Route("/api/mj/self", own_tasks),
        Route("/mj/image/{mj_id}", task_image),
    ], lifespan=lifespan, exception_handlers={Exception: crashed})


def serve(port: int) -> None:
    """The granian configuration `mjgate serve` uses (src/mjgate/cli.py): ASGI, one worker, no access log,
    the default loop (uvloop when installed)."""
    from granian import Granian

    Granian("floor_app:create_app", factory=True, interface="asgi", address="127.0.0.1", port=port, workers=1,
            log_access=False).serve()
