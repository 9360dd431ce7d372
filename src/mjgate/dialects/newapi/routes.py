"""new-api's management face: GET /api/mj/self and GET /api/mj/ (seeds 000-002)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mjgate.api.deps import AdminUser, CurrentUser, public_base_url
from mjgate.api.routing import dialect_route
from mjgate.dialects.newapi.render import error_reply, task_item
from mjgate.errors import BadRequest
from mjgate.models import User
from mjgate.models.channel import MODES
from mjgate.models.task import STATUSES
from mjgate.tasks.actions import ACTIONS
from mjgate.stats.repository import usernames_by_id
from mjgate.tasks.repository import TaskFilter, list_tasks

router = APIRouter(tags=["management (new-api)"], route_class=dialect_route(error_reply))

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE = 10_000_000  # beyond this the offset overflows some databases; no real listing is that deep
MS_THRESHOLD = 10**11  # timestamps above this are milliseconds (new-api's web UI sends ms)
MAX_TIMESTAMP_MS = 253_402_300_799_999  # the last millisecond of the year 9999
MAX_ID = 2**62  # ids are BIGINTs; anything beyond is no row (and would overflow the query)


def _int_param(request: Request, name: str, *, maximum: int = MAX_ID) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if len(raw) > 20 or not raw.lstrip("+-").isdigit():
        raise BadRequest(f"{name} must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if abs(value) > maximum:
        raise BadRequest(f"{name} is out of range (at most {maximum})")
    return value


def _timestamp_ms(request: Request, name: str, *, end: bool) -> int | None:
    value = _int_param(request, name, maximum=MAX_TIMESTAMP_MS)
    if value is None:
        return None
    if value < 0:
        raise BadRequest(f"{name} must not be negative")
    if value > MS_THRESHOLD:
        return value
    # A seconds end bound covers the whole of that second.
    return value * 1000 + (999 if end else 0)


def _paging(request: Request) -> tuple[int, int]:
    """p < 1 is read as 1 and page_size outside 1..100 is clamped (documented in docs/api.md)."""
    page = _int_param(request, "p") or 1
    page = max(page, 1)
    if page > MAX_PAGE:
        raise BadRequest(f"p must be at most {MAX_PAGE}")
    size = _int_param(request, "page_size")
    if size is None or size < 1:
        size = DEFAULT_PAGE_SIZE
    return page, min(size, MAX_PAGE_SIZE)


def _choices(request: Request, name: str, allowed: tuple[str, ...]) -> tuple[str, ...] | None:
    """A comma-separated list of known values (case-insensitive), or None when empty."""
    raw = (request.query_params.get(name) or "").strip()
    if not raw:
        return None
    values = tuple(dict.fromkeys(v.strip().upper() for v in raw.split(",") if v.strip()))
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise BadRequest(f"{name} must be one or more of {', '.join(allowed)}; got {raw[:60]!r}")
    return values or None


def _filter(request: Request, *, user_id: int | None, allow_channel: bool) -> TaskFilter:
    mj_id = (request.query_params.get("mj_id") or "").strip() or None
    if mj_id is not None and len(mj_id) > 64:
        raise BadRequest("mj_id is too long")
    start_ms = _timestamp_ms(request, "start_timestamp", end=False)
    end_ms = _timestamp_ms(request, "end_timestamp", end=True)
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise BadRequest("start_timestamp is after end_timestamp")
    channel_id = _int_param(request, "channel_id") if allow_channel else None
    mode = (request.query_params.get("mode") or "").strip().lower() or None
    if mode is not None and mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}")
    prompt = (request.query_params.get("prompt") or "").strip() or None
    if prompt is not None and len(prompt) > 200:
        raise BadRequest("prompt is too long (at most 200 characters)")
    username = None
    if allow_channel:  # admins: any user's tasks, by id or by name
        user_id = _int_param(request, "user_id")
        username = (request.query_params.get("username") or "").strip() or None
        if username is not None and len(username) > 64:
            raise BadRequest("username is too long")
    return TaskFilter(user_id=user_id, channel_id=channel_id, mj_id=mj_id, start_ms=start_ms, end_ms=end_ms,
                      statuses=_choices(request, "status", STATUSES), actions=_choices(request, "action", ACTIONS),
                      mode=mode, prompt=prompt, username=username)


async def _page(request: Request, flt: TaskFilter, *, admin: bool, owner: User | None = None) -> JSONResponse:
    """One page; `owner`: every task is theirs (/api/mj/self), so their name needs no query.
    A JSONResponse, not a dict: FastAPI's pass over a returned dict (pydantic's serializer) was
    14% of the route's samples."""
    page, size = _paging(request)
    async with request.app.state.db.reading() as conn:
        tasks, total = await list_tasks(conn, flt, (page - 1) * size, size)
        names = {owner.id: owner.username} if owner is not None else \
            await usernames_by_id(conn, {t.user_id for t in tasks})
    base_url = public_base_url(request)
    return JSONResponse({
        "success": True,
        "message": "",
        "data": {
            "items": [task_item(t, request, admin=admin, username=names.get(t.user_id, ""), base_url=base_url)
                      for t in tasks],
            "total": total,
            "page": page,
            "page_size": size,
        },
    })


@router.get("/api/mj/self", summary="The caller's own Midjourney tasks")
@router.get("/api/mj/self/", include_in_schema=False)
async def list_own_tasks(request: Request, user: CurrentUser) -> JSONResponse:
    return await _page(request, _filter(request, user_id=user.id, allow_channel=False), admin=False, owner=user)


@router.get("/api/mj/", summary="Every user's Midjourney tasks (admin)")
@router.get("/api/mj", include_in_schema=False)
async def list_all_tasks(request: Request, admin: AdminUser) -> JSONResponse:
    return await _page(request, _filter(request, user_id=None, allow_channel=True), admin=True)
