"""The admin HTTP API the console uses: users, keys, channels, prices and the quota ledger.

Answers use new-api's envelope (`{"success", "message", "data"}`; errors are rendered by the
/api/ handler as `{"success": false, "message"}`). Every state-changing route passes the console's
CSRF guard (see api/console.py). Everything is admin-only except /keys, where a user manages
their own keys.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mjgate.accounts import keys as key_service
from mjgate.accounts import repository as accounts
from mjgate.accounts import users as user_service
from mjgate.api.routing import dialect_route
from mjgate.dialects.console.csrf import console_user, csrf_guard, ok
from mjgate.dialects.newapi.render import error_reply
from mjgate.billing import ledger, pricing
from mjgate.channels import admin as channel_service
from mjgate.channels import health as channel_health
from mjgate.errors import BadRequest, Forbidden, NotFound
from mjgate.models import User
from mjgate.models.ledger import LEDGER_KINDS
from mjgate.models.user import ROLES
from mjgate.tasks.actions import ACTIONS

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(csrf_guard)],
                   route_class=dialect_route(error_reply))

MAX_PAGE_SIZE = 100
MAX_QUOTA = 10**15  # far beyond any real balance, well inside a BIGINT
MAX_USD = MAX_QUOTA // pricing.QUOTA_PER_USD


async def _admin(user: Annotated[User, Depends(console_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("administrator access required")
    return user


Admin = Annotated[User, Depends(_admin)]
Anyone = Annotated[User, Depends(console_user)]
Page = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Id = Annotated[int, Path(ge=1, le=2**62)]


def _paged(items: list, total: int, page: int, size: int):
    return ok({"items": items, "total": total, "page": page, "page_size": size})


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s/\\]+$")]
ShortList = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=64)]


# ------------------------------------------------------------------ users


class UserCreate(_Body):
    username: Name
    password: str | None = Field(None, min_length=4, max_length=1024)
    role: Literal[ROLES] = "user"  # type: ignore[valid-type]
    group: Name = "default"
    display_name: str = Field("", max_length=128)
    quota: int = Field(0, ge=0, le=MAX_QUOTA, description="Initial balance in quota units (a ledger top-up).")


class TopUp(_Body):
    amount: int | None = Field(None, ge=-MAX_QUOTA, le=MAX_QUOTA, description="Quota units")
    amount_usd: float | None = Field(None, ge=-MAX_USD, le=MAX_USD, description="Or US dollars (500,000 units each)")
    kind: Literal["topup", "adjust"] = "topup"
    memo: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _one_amount(self):
        if (self.amount is None) == (self.amount_usd is None):
            raise ValueError("give exactly one of amount (units) or amount_usd")
        return self

    def units(self) -> int:
        if self.amount is not None:
            return self.amount
        return round(self.amount_usd * pricing.QUOTA_PER_USD)


async def _user(session, user_id: int) -> User:
    user = await accounts.user(session, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


@router.get("/users", summary="Users, a page at a time")
async def list_users(request: Request, admin: Admin, p: Page = 1, page_size: PageSize = 20,
                     q: Annotated[str, Query(max_length=64)] = ""):
    async with request.app.state.db.read() as session:
        users, total = await user_service.page_users(session, offset=(p - 1) * page_size, limit=page_size,
                                                     search=q.strip() or None)
    return _paged([user_service.public_user(u) for u in users], total, p, page_size)


@router.post("/users", summary="Create a user; its access token is shown once", status_code=201)
async def create_user(request: Request, admin: Admin, body: UserCreate):
    if body.role == "root" and admin.role != "root":
        raise Forbidden("only a root user can create another root user")
    async with request.app.state.db.write() as session:
        created = await user_service.create_user(session, body.username, role=body.role, group=body.group,
                                                 password=body.password, display_name=body.display_name)
        if body.quota:
            await ledger.credit(session, created.user.id, body.quota, kind="topup", memo="initial quota",
                                actor_user_id=admin.id)
            created.user.quota = body.quota
    return ok({**user_service.public_user(created.user), "access_token": created.access_token}, status=201)


async def _set_user_status(request: Request, admin: User, user_id: int, status: str):
    async with request.app.state.db.write() as session:
        target = await _user(session, user_id)
        if target.id == admin.id and status != "enabled":
            raise BadRequest("you cannot disable yourself")
        if target.role == "root" and admin.role != "root":
            raise Forbidden("only a root user can change a root user")
        target = await user_service.set_status(session, target.username, status)
        return ok(user_service.public_user(target))


@router.post("/users/{user_id}/disable", summary="Disable a user (ends their console sessions)")
async def disable_user(request: Request, admin: Admin, user_id: Id):
    return await _set_user_status(request, admin, user_id, "disabled")


@router.post("/users/{user_id}/enable", summary="Enable a user")
async def enable_user(request: Request, admin: Admin, user_id: Id):
    return await _set_user_status(request, admin, user_id, "enabled")


class InFlightLimit(_Body):
    max_in_flight: int | None = Field(..., ge=0, le=1_000_000,
                                      description="Unfinished tasks (queued or running) allowed at once; null = no limit")


@router.post("/users/{user_id}/limits", summary="Set a user's limit of unfinished tasks")
async def set_user_limits(request: Request, admin: Admin, user_id: Id, body: InFlightLimit):
    async with request.app.state.db.write() as session:
        target = await _user(session, user_id)
        target = await user_service.set_max_in_flight(session, target, body.max_in_flight)
        return ok(user_service.public_user(target))


@router.post("/users/{user_id}/topup", summary="Add (or with kind=adjust, remove) quota: one ledger entry")
async def top_up(request: Request, admin: Admin, user_id: Id, body: TopUp):
    units = body.units()
    async with request.app.state.db.write() as session:
        await _user(session, user_id)
        await ledger.credit(session, user_id, units, kind=body.kind, memo=body.memo or f"by {admin.username}",
                            actor_user_id=admin.id)
    async with request.app.state.db.read() as session:
        user = await _user(session, user_id)
        balance = await ledger.ledger_balance(session, user_id)
    return ok({**user_service.public_user(user), "ledger_balance": balance, "amount": units})


# ------------------------------------------------------------------ keys


class KeyCreate(_Body):
    user_id: int | None = Field(None, ge=1, description="Owner (admins only); default: yourself")
    name: str = Field("", max_length=128)
    quota: int | None = Field(None, ge=0, le=MAX_QUOTA, description="Spending limit; null = unlimited")
    expires_at: int | None = Field(None, ge=0, le=2**53, description="Epoch ms; null = never")
    allowed_actions: ShortList | None = None
    allowed_ips: ShortList | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.allowed_actions:
            bad = [a for a in self.allowed_actions if a.upper() not in ACTIONS]
            if bad:
                raise ValueError(f"unknown actions: {', '.join(bad[:5])}")
        if self.allowed_ips:
            import ipaddress

            for entry in self.allowed_ips:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"not an IP address or network: {entry!r}") from None
        return self


@router.get("/keys", summary="API keys: a user's own, or (admins) anyone's")
async def list_keys(request: Request, user: Anyone, user_id: Annotated[int | None, Query(ge=1, le=2**62)] = None):
    if not user.is_admin:
        if user_id not in (None, user.id):
            raise Forbidden("you can only list your own keys")
        user_id = user.id
    async with request.app.state.db.read() as session:
        keys = await key_service.list_keys(session, user_id)
        names = await accounts.usernames(session, {k.user_id for k in keys}) if user.is_admin else {}
    items = [{**key_service.public_key(k), "username": names.get(k.user_id, user.username)} for k in keys]
    return ok({"items": items, "total": len(items)})


@router.post("/keys", summary="Create an API key; the key is shown once", status_code=201)
async def create_key(request: Request, user: Anyone, body: KeyCreate):
    owner_id = body.user_id or user.id
    if owner_id != user.id and not user.is_admin:
        raise Forbidden("you can only create keys for yourself")
    async with request.app.state.db.write() as session:
        owner = await _user(session, owner_id)
        created = await key_service.create_key(
            session, owner, name=body.name, quota=body.quota, expires_at=body.expires_at,
            allowed_actions=body.allowed_actions, allowed_ips=body.allowed_ips,
        )
        return ok({**key_service.public_key(created.key), "key": created.secret}, status=201)


async def _set_key_status(request: Request, user: User, key_id: int, status: str):
    async with request.app.state.db.write() as session:
        key = await key_service.set_status(session, key_id, status, user_id=None if user.is_admin else user.id)
        return ok(key_service.public_key(key))


@router.post("/keys/{key_id}/limits", summary="Set a key's limit of unfinished tasks (admins)")
async def set_key_limits(request: Request, admin: Admin, key_id: Id, body: InFlightLimit):
    async with request.app.state.db.write() as session:
        return ok(key_service.public_key(await key_service.set_max_in_flight(session, key_id, body.max_in_flight)))


@router.post("/keys/{key_id}/disable", summary="Disable an API key")
async def disable_key(request: Request, user: Anyone, key_id: Id):
    return await _set_key_status(request, user, key_id, "disabled")


@router.post("/keys/{key_id}/enable", summary="Enable an API key")
async def enable_key(request: Request, user: Anyone, key_id: Id):
    return await _set_key_status(request, user, key_id, "enabled")


# ------------------------------------------------------------------ channels


class ChannelFields(_Body):
    name: str | None = Field(None, min_length=1, max_length=128)
    base_url: str | None = Field(None, min_length=1, max_length=512)
    secret: str | None = Field(None, max_length=512)
    priority: int | None = Field(None, ge=-1_000_000, le=1_000_000)
    weight: int | None = Field(None, ge=0, le=1_000_000)
    groups: ShortList | None = None
    modes: ShortList | None = None
    actions: ShortList | None = None
    image_hosts: ShortList | None = None
    max_running: int | None = Field(None, ge=1, le=1_000_000, description="Tasks the upstream runs at once; null = unbounded")
    max_queued: int | None = Field(None, ge=0, le=1_000_000, description="Tasks the upstream queues beyond those")
    daily_cap: int | None = Field(None, ge=0, le=1_000_000, description="Tasks sent per UTC day; null = no cap")
    active_hours: str | None = Field(None, max_length=16, description="HH:MM-HH:MM (UTC) when it takes new tasks")
    mode_fallback: bool | None = Field(None, description="Send fast as relax while the account has no fast hours")


class ChannelCreate(ChannelFields):
    name: str = Field(..., min_length=1, max_length=128)
    base_url: str = Field(..., min_length=1, max_length=512)
    secret: str = Field("", max_length=512)


def _channel_changes(body: ChannelFields) -> dict:
    changes = body.model_dump(exclude_unset=True)
    # null means "no value": required strings cannot be cleared; lists fall back to "all".
    for required in ("name", "base_url", "priority", "weight", "groups", "modes", "mode_fallback"):
        if required in changes and changes[required] is None:
            raise BadRequest(f"{required} cannot be empty")
    if changes.get("secret") is None:
        changes.pop("secret", None)  # an omitted or null secret keeps the stored one
    return changes


@router.get("/channels", summary="Channels with their health")
async def list_channels(request: Request, admin: Admin):
    async with request.app.state.db.read() as session:
        channels = await channel_service.list_channels(session)
    return ok({"items": [channel_service.public_channel(c) for c in channels], "total": len(channels)})


@router.post("/channels", summary="Add a channel", status_code=201)
async def create_channel(request: Request, admin: Admin, body: ChannelCreate):
    changes = _channel_changes(body)
    async with request.app.state.db.write() as session:
        channel = await channel_service.create_channel(session, **changes)
        return ok(channel_service.public_channel(channel), status=201)


@router.patch("/channels/{channel_id}", summary="Edit a channel (only the fields sent)")
async def edit_channel(request: Request, admin: Admin, channel_id: Id, body: ChannelFields):
    changes = _channel_changes(body)
    if not changes:
        raise BadRequest("nothing to change")
    async with request.app.state.db.write() as session:
        channel = await channel_service.update_channel(session, channel_id, changes)
        return ok(channel_service.public_channel(channel))


async def _set_channel_status(request: Request, channel_id: int, status: str):
    async with request.app.state.db.write() as session:
        channel = await channel_service.update_channel(session, channel_id, {"status": status})
        return ok(channel_service.public_channel(channel))


@router.post("/channels/{channel_id}/disable", summary="Disable a channel by hand")
async def disable_channel(request: Request, admin: Admin, channel_id: Id):
    return await _set_channel_status(request, channel_id, "manual_disabled")


@router.post("/channels/{channel_id}/enable", summary="Enable a channel (clears its failure streak)")
async def enable_channel(request: Request, admin: Admin, channel_id: Id):
    return await _set_channel_status(request, channel_id, "enabled")


@router.post("/channels/{channel_id}/test", summary="Call the channel now (list-by-condition) and record its health")
async def test_channel(request: Request, admin: Admin, channel_id: Id):
    state = request.app.state
    return ok(await channel_health.test_channel(state.db, state.upstream, channel_id))


# ------------------------------------------------------------------ prices


@router.get("/prices", summary="Action prices (USD), group ratios and mode ratios, with their defaults")
async def get_prices(request: Request, admin: Admin):
    async with request.app.state.db.read() as session:
        tables = await pricing.load_tables(session)
    return ok({"tables": tables, "defaults": pricing.DEFAULTS, "quota_per_usd": pricing.QUOTA_PER_USD})


class PriceTables(_Body):
    mj_action_prices: dict[Annotated[str, Field(max_length=64)], float] | None = Field(None, max_length=200)
    group_ratios: dict[Annotated[str, Field(min_length=1, max_length=64)], float] | None = Field(None, max_length=200)
    mode_ratios: dict[Literal["fast", "relax", "turbo"], float] | None = None

    @model_validator(mode="after")
    def _check(self):
        for table in (self.mj_action_prices, self.group_ratios, self.mode_ratios):
            for name, value in (table or {}).items():
                if not (0 <= value <= 1_000_000):
                    raise ValueError(f"{name}: must be between 0 and 1000000")
        unknown = set(self.mj_action_prices or {}) - set(pricing.DEFAULT_ACTION_PRICES_USD)
        if unknown:
            raise ValueError(f"unknown price names: {', '.join(sorted(unknown)[:5])}")
        return self


@router.put("/prices", summary="Replace the overrides of one or more tables (missing entries use defaults)")
async def set_prices(request: Request, admin: Admin, body: PriceTables):
    given = body.model_dump(exclude_none=True)
    if not given:
        raise BadRequest("send at least one of mj_action_prices, group_ratios, mode_ratios")
    async with request.app.state.db.write() as session:
        for key, values in given.items():
            await pricing.set_table(session, key, values)
    async with request.app.state.db.read() as session:
        tables = await pricing.load_tables(session)
    return ok({"tables": tables, "defaults": pricing.DEFAULTS, "quota_per_usd": pricing.QUOTA_PER_USD})


# ------------------------------------------------------------------ ledger


@router.get("/ledger", summary="The quota ledger, newest first")
async def list_ledger(request: Request, admin: Admin, p: Page = 1, page_size: PageSize = 20,
                      user_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                      kind: Annotated[Literal[LEDGER_KINDS] | None, Query()] = None):  # type: ignore[valid-type]
    async with request.app.state.db.read() as session:
        rows, total = await ledger.page_entries(session, offset=(p - 1) * page_size, limit=page_size,
                                                user_id=user_id, kind=kind)
    items = [
        {"id": e.id, "user_id": e.user_id, "username": username, "token_id": e.token_id, "task_id": e.task_id,
         "mj_id": mj_id, "kind": e.kind, "amount": e.amount, "memo": e.memo, "actor_user_id": e.actor_user_id,
         "created_at": e.created_at}
        for e, username, mj_id in rows
    ]
    return _paged(items, total, p, page_size)
