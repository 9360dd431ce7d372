"""The `mjgate` command line. Every command that prints data has --json for scripts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from mjgate.client.cli import demo_hint, register as _register_client_commands
from mjgate.config import Settings, get_settings
from mjgate.db import Database
from mjgate.db.engine import dialect_of
from mjgate.db.migrate import upgrade
from mjgate.errors import GatewayError

app = typer.Typer(help="mjgate: a Midjourney task gateway.", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="Users and their quota.", no_args_is_help=True)
token_app = typer.Typer(help="API keys (sk-...).", no_args_is_help=True)
channel_app = typer.Typer(help="Upstream channels.", no_args_is_help=True)
banned_word_app = typer.Typer(help="The banned-word list checked before any charge.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(banned_word_app, name="banned-word")
app.add_typer(token_app, name="token")
app.add_typer(channel_app, name="channel")
_register_client_commands(app)  # login, imagine, action, ...: HTTP only (mjgate/client/cli.py)

# Not on a terminal (a pipe, a file, a CI log), rich would cut tables to 80 columns: no limit there.
console = Console(width=None if sys.stdout.isatty() else 10_000)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _sqlite_path(database_url: str):
    from pathlib import Path

    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    return Path(name).resolve() if name and name != ":memory:" else None


def _db_ready(settings: Settings) -> None:
    """SQLite migrates itself (zero setup); server databases are migrated with `mjgate migrate`.

    A SQLite file that was not there yet is created, and the command says so on stderr with its
    full path: run from another directory (or with another MJGATE_DATA_DIR), the CLI would
    otherwise quietly work on an empty database of its own.
    """
    if dialect_of(settings.database_url) == "sqlite":
        path = _sqlite_path(settings.database_url)
        new = path is not None and not path.exists()
        upgrade(settings.database_url)
        if new:
            typer.echo(f"mjgate: created a new, empty database at {path} (none was there; the gateway's "
                       "database is in its MJGATE_DATA_DIR, ./data of the directory it runs in)", err=True)


def database_label(settings: Settings) -> str:
    """Which database a command used, for operators: the SQLite file, or the server URL without a password."""
    from sqlalchemy.engine import make_url

    if dialect_of(settings.database_url) == "sqlite":
        return f"SQLite {_sqlite_path(settings.database_url)}"
    return make_url(settings.database_url).render_as_string(hide_password=True)


def run_with_database(fn: Callable[[Database], Awaitable[Any]]) -> Any:
    """Run fn(db) on a ready database; a GatewayError becomes a clear message and exit code 1."""
    settings = get_settings()
    _db_ready(settings)

    async def runner():
        db = Database(settings.database_url)
        try:
            async with _reference_notices(settings.redis_url):
                return await fn(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(runner())
    except GatewayError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


@contextlib.asynccontextmanager
async def _reference_notices(redis_url: str | None):
    """With Redis configured, a key, user, channel or price change made by a command reaches the
    running servers' caches at once (as one made through the admin API does)."""
    if not redis_url:
        yield
        return
    from mjgate import invalidation
    from mjgate.events import publish_reference_change, redis_client

    redis = redis_client(redis_url)

    async def tell_servers() -> None:
        try:
            await publish_reference_change(redis, origin="cli")
        except Exception as exc:
            typer.echo(f"warning: could not tell running servers through Redis ({str(exc) or type(exc).__name__}); "
                       "they see the change within their cache TTL", err=True)

    invalidation.on_local_change(tell_servers)
    try:
        yield
    finally:
        invalidation.remove_listener(tell_servers)
        await redis.aclose()


def run_in_transaction(fn: Callable[[Any], Awaitable[Any]]) -> Any:
    async def in_transaction(db: Database):
        async with db.write() as session:
            return await fn(session)

    return run_with_database(in_transaction)


def emit(data: Any, as_json: bool, columns: list[str] | None = None) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    rows = data if isinstance(data, list) else [data]
    if not rows:
        typer.echo(f"(none, in {database_label(get_settings())})", err=True)
        return
    columns = columns or list(rows[0].keys())
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _print_version(value: bool) -> None:
    if value:
        from mjgate import __version__

        typer.echo(f"mjgate {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """mjgate: a Midjourney task gateway."""


# ---------------------------------------------------------------- database


@app.command()
def migrate() -> None:
    """Apply every pending database migration."""
    settings = get_settings()
    upgrade(settings.database_url)
    typer.echo(f"migrated {dialect_of(settings.database_url)} database")


@app.command()
def settings(
    as_json: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the table docs/settings.md holds.")] = False,
) -> None:
    """List every MJGATE_* setting with its default and meaning."""
    rows = [
        {"variable": f"MJGATE_{name.upper()}", "default": str(field.default), "meaning": field.description or ""}
        for name, field in Settings.model_fields.items()
    ]
    if markdown:
        typer.echo("# Settings\n\nEvery setting is an environment variable (or a line in `.env`). "
                   "Generated by `mjgate settings --markdown`.\n")
        typer.echo("| variable | default | meaning |\n|---|---|---|")
        for row in rows:
            typer.echo(f"| `{row['variable']}` | `{row['default']}` | {row['meaning']} |")
        return
    emit(rows, as_json)


# ---------------------------------------------------------------- users


@user_app.command("create")
def user_create(
    name: str,
    role: Annotated[str, typer.Option(help="user, admin or root")] = "user",
    quota: Annotated[int, typer.Option(help="Initial quota (a ledger top-up).")] = 0,
    group: Annotated[str, typer.Option(help="Pricing group.")] = "default",
    password: Annotated[Optional[str], typer.Option(help="Console password.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a user; prints its dashboard access token once."""
    from mjgate.accounts.users import create_user, public_user
    from mjgate.billing.ledger import credit

    async def work(session):
        created = await create_user(session, name, role=role, group=group, password=password)
        if quota:
            await credit(session, created.user.id, quota, kind="topup", memo="initial quota")
            created.user.quota = quota
        return {**public_user(created.user), "access_token": created.access_token}

    emit(run_in_transaction(work), as_json, ["id", "username", "role", "group", "quota", "access_token"])


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    from mjgate.accounts.users import list_users, public_user

    async def work(session):
        return [public_user(u) for u in await list_users(session, limit=10_000)]

    emit(run_in_transaction(work), as_json, ["id", "username", "role", "status", "group", "quota", "used_quota"])


def _user_status(name: str, status: str, as_json: bool) -> None:
    from mjgate.accounts.users import public_user, set_status

    async def work(session):
        return public_user(await set_status(session, name, status))

    emit(run_in_transaction(work), as_json, ["id", "username", "status"])


@user_app.command("disable")
def user_disable(name: str, as_json: JsonOpt = False) -> None:
    _user_status(name, "disabled", as_json)


@user_app.command("enable")
def user_enable(name: str, as_json: JsonOpt = False) -> None:
    _user_status(name, "enabled", as_json)


@user_app.command("topup")
def user_topup(name: str, amount: int, memo: str = "", as_json: JsonOpt = False) -> None:
    """Add quota to a user (recorded in the ledger)."""
    from mjgate.accounts import repository as accounts
    from mjgate.accounts.users import public_user, require_by_username
    from mjgate.billing.ledger import credit

    async def work(session):
        user = await require_by_username(session, name)
        await credit(session, user.id, amount, kind="topup", memo=memo or "cli top-up")
        return public_user(await accounts.reloaded(session, user))

    emit(run_in_transaction(work), as_json, ["id", "username", "quota"])


MaxInFlightArg = Annotated[str, typer.Option("--max-in-flight",
                                             help='Unfinished tasks allowed at once, or "none" for no limit.')]


def _limit(value: str) -> int | None:
    if value.strip().lower() == "none":
        return None
    if not value.strip().isdigit():
        raise typer.BadParameter('--max-in-flight must be a whole number or "none"')
    return int(value)


@user_app.command("set-limit")
def user_set_limit(name: str, max_in_flight: MaxInFlightArg, as_json: JsonOpt = False) -> None:
    """Limit how many unfinished tasks (queued or running) the user may have at once."""
    from mjgate.accounts.users import public_user, require_by_username, set_max_in_flight

    limit = _limit(max_in_flight)

    async def work(session):
        return public_user(await set_max_in_flight(session, await require_by_username(session, name), limit))

    emit(run_in_transaction(work), as_json, ["id", "username", "in_flight", "max_in_flight"])


@user_app.command("reset-token")
def user_reset_token(name: str, as_json: JsonOpt = False) -> None:
    """Issue a new dashboard access token (the old one stops working)."""
    from mjgate.accounts.users import require_by_username, reset_access_token

    async def work(session):
        user = await require_by_username(session, name)
        return {"id": user.id, "username": user.username, "access_token": await reset_access_token(session, user)}

    emit(run_in_transaction(work), as_json)


@user_app.command("webhook-secret")
def user_webhook_secret(
    name: str,
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace it with a new one (the old one stops verifying).")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """The secret (whsec_...) this user's callbacks are signed with (Standard Webhooks headers)."""
    from mjgate.accounts.users import require_by_username
    from mjgate.accounts.webhook_secrets import secret_of

    async def work(session):
        user = await require_by_username(session, name)
        return {"secret": await secret_of(session, user.id, rotate=rotate)}

    emit(run_in_transaction(work), as_json)


# ---------------------------------------------------------------- keys


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="Owner's username.")],
    name: Annotated[str, typer.Option(help="A label.")] = "",
    quota: Annotated[Optional[int], typer.Option(help="Spending limit of this key.")] = None,
    unlimited: Annotated[bool, typer.Option("--unlimited", help="No limit of its own (the default).")] = False,
    actions: Annotated[Optional[str], typer.Option(help="Allowed actions, comma-separated (default: all).")] = None,
    ips: Annotated[Optional[str], typer.Option(help="Allowed client IPs, comma-separated (default: any).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key; prints the key once."""
    from mjgate.accounts.keys import create_key, public_key
    from mjgate.accounts.users import require_by_username

    if unlimited and quota is not None:
        console.print("[red]error:[/red] --quota and --unlimited exclude each other")
        raise typer.Exit(2)

    async def work(session):
        owner = await require_by_username(session, user)
        created = await create_key(
            session, owner, name=name, quota=quota, allowed_actions=_csv(actions), allowed_ips=_csv(ips)
        )
        return {**public_key(created.key), "key": created.secret}

    emit(run_in_transaction(work), as_json, ["id", "user_id", "name", "unlimited", "remain_quota", "key"])


@token_app.command("list")
def token_list(user: Annotated[Optional[str], typer.Option("--user")] = None, as_json: JsonOpt = False) -> None:
    from mjgate.accounts.keys import list_keys, public_key
    from mjgate.accounts.users import require_by_username

    async def work(session):
        owner_id = (await require_by_username(session, user)).id if user else None
        return [public_key(k) for k in await list_keys(session, owner_id)]

    emit(run_in_transaction(work), as_json, ["id", "user_id", "name", "key_hint", "status", "unlimited", "remain_quota"])


def _token_status(key_id: int, status: str, as_json: bool) -> None:
    from mjgate.accounts.keys import public_key, set_status

    async def work(session):
        return public_key(await set_status(session, key_id, status))

    emit(run_in_transaction(work), as_json, ["id", "name", "status"])


@token_app.command("disable")
def token_disable(key_id: int, as_json: JsonOpt = False) -> None:
    _token_status(key_id, "disabled", as_json)


@token_app.command("enable")
def token_enable(key_id: int, as_json: JsonOpt = False) -> None:
    _token_status(key_id, "enabled", as_json)


@token_app.command("set-limit")
def token_set_limit(key_id: int, max_in_flight: MaxInFlightArg, as_json: JsonOpt = False) -> None:
    """Limit how many unfinished tasks may be submitted with this key at once."""
    from mjgate.accounts.keys import public_key, set_max_in_flight

    limit = _limit(max_in_flight)

    async def work(session):
        return public_key(await set_max_in_flight(session, key_id, limit))

    emit(run_in_transaction(work), as_json, ["id", "name", "in_flight", "max_in_flight"])


# ---------------------------------------------------------------- channels

CHANNEL_COLUMNS = ["id", "name", "base_url", "status", "priority", "weight", "modes", "max_running", "max_queued",
                   "daily_cap", "in_flight"]
_NONE = 'a number, or "none" for no limit'
MaxRunningOpt = Annotated[Optional[str], typer.Option("--max-running", help=f"Tasks the upstream runs at once ({_NONE}).")]
MaxQueuedOpt = Annotated[Optional[str], typer.Option("--max-queued", help=f"Tasks the upstream queues beyond those ({_NONE}).")]
DailyCapOpt = Annotated[Optional[str], typer.Option("--daily-cap", help=f"Tasks sent per UTC day ({_NONE}).")]
ActiveHoursOpt = Annotated[Optional[str], typer.Option("--active-hours", help='HH:MM-HH:MM in UTC when it takes new tasks ("none" = always).')]
ModeFallbackOpt = Annotated[Optional[bool], typer.Option("--mode-fallback/--no-mode-fallback", help="Send fast tasks as relax while the account has no fast hours.")]


@channel_app.command("create")
def channel_create(
    name: str,
    base_url: Annotated[str, typer.Option("--base-url", help="The upstream's base URL.")],
    secret: Annotated[str, typer.Option(help="Sent upstream as mj-api-secret.")] = "",
    priority: int = 0,
    weight: int = 1,
    groups: Annotated[str, typer.Option(help="Comma-separated groups served.")] = "default",
    modes: Annotated[str, typer.Option(help="Comma-separated: fast,relax,turbo.")] = "fast,relax,turbo",
    actions: Annotated[Optional[str], typer.Option(help="Comma-separated actions (default: all).")] = None,
    image_hosts: Annotated[Optional[str], typer.Option("--image-hosts", help="Allowed image hosts.")] = None,
    max_running: MaxRunningOpt = None,
    max_queued: MaxQueuedOpt = None,
    daily_cap: DailyCapOpt = None,
    active_hours: ActiveHoursOpt = None,
    mode_fallback: ModeFallbackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an upstream channel."""
    from mjgate.channels.admin import create_channel, public_channel

    limits = _channel_limits(max_running, max_queued, daily_cap, active_hours, mode_fallback)

    async def work(session):
        channel = await create_channel(
            session, name, base_url, secret, priority=priority, weight=weight, groups=_csv(groups) or [],
            modes=_csv(modes) or [], actions=_csv(actions), image_hosts=_csv(image_hosts), **limits,
        )
        return public_channel(channel)

    emit(run_in_transaction(work), as_json, CHANNEL_COLUMNS)


@channel_app.command("edit")
def channel_edit(
    channel_id: int,
    name: Annotated[Optional[str], typer.Option(help="A new name.")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="A new base URL.")] = None,
    secret: Annotated[Optional[str], typer.Option(help="A new mj-api-secret.")] = None,
    priority: Optional[int] = None,
    weight: Optional[int] = None,
    groups: Annotated[Optional[str], typer.Option(help="Comma-separated groups served.")] = None,
    modes: Annotated[Optional[str], typer.Option(help="Comma-separated: fast,relax,turbo.")] = None,
    max_running: MaxRunningOpt = None,
    max_queued: MaxQueuedOpt = None,
    daily_cap: DailyCapOpt = None,
    active_hours: ActiveHoursOpt = None,
    mode_fallback: ModeFallbackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a channel: only the options given change."""
    from mjgate.channels.admin import public_channel, update_channel

    changes = {k: v for k, v in dict(name=name, base_url=base_url, secret=secret, priority=priority, weight=weight,
                                     groups=_csv(groups), modes=_csv(modes)).items() if v is not None}
    changes.update(_channel_limits(max_running, max_queued, daily_cap, active_hours, mode_fallback))
    if not changes:
        raise typer.BadParameter("give at least one option to change")

    async def work(session):
        return public_channel(await update_channel(session, channel_id, changes))

    emit(run_in_transaction(work), as_json, CHANNEL_COLUMNS)


def _channel_limits(max_running, max_queued, daily_cap, active_hours, mode_fallback) -> dict:
    """The capacity options given, with "none" meaning no limit."""
    given = dict(max_running=max_running, max_queued=max_queued, daily_cap=daily_cap, active_hours=active_hours)
    limits = {k: (None if str(v).strip().lower() in ("none", "") else v) for k, v in given.items() if v is not None}
    if mode_fallback is not None:
        limits["mode_fallback"] = mode_fallback
    return limits


@channel_app.command("list")
def channel_list(as_json: JsonOpt = False) -> None:
    from mjgate.channels.admin import list_channels, public_channel

    async def work(session):
        return [public_channel(c) for c in await list_channels(session)]

    emit(run_in_transaction(work), as_json, CHANNEL_COLUMNS)


def _channel_status(channel_id: int, status: str, as_json: bool) -> None:
    from mjgate.channels.admin import public_channel, update_channel

    async def work(session):
        return public_channel(await update_channel(session, channel_id, {"status": status}))

    emit(run_in_transaction(work), as_json, ["id", "name", "status"])


@channel_app.command("test")
def channel_test(channel_id: int, as_json: JsonOpt = False) -> None:
    """Call the channel now and record its health (exit 1 if it did not answer)."""
    import aiohttp

    from mjgate.channels.health import test_channel
    from mjgate.upstream import build_upstream

    async def work(db: Database):
        async with aiohttp.ClientSession() as http:
            return await test_channel(db, build_upstream(http), channel_id)

    result = run_with_database(work)
    emit(result if as_json else {k: result[k] for k in ("ok", "latency_ms", "error")}, as_json)
    if not result["ok"]:
        raise typer.Exit(1)


@channel_app.command("disable")
def channel_disable(channel_id: int, as_json: JsonOpt = False) -> None:
    _channel_status(channel_id, "manual_disabled", as_json)


@channel_app.command("enable")
def channel_enable(channel_id: int, as_json: JsonOpt = False) -> None:
    _channel_status(channel_id, "enabled", as_json)


# ---------------------------------------------------------------- moderation

GroupOpt = Annotated[Optional[str], typer.Option("--group", "-g", help="The word list's group.")]


@banned_word_app.command("add")
def banned_word_add(words: list[str], group: GroupOpt = None, as_json: JsonOpt = False) -> None:
    """Ban words or phrases (case and punctuation do not matter), in a group (default "default")."""
    from mjgate.moderation.admin import add_words

    emit(run_in_transaction(lambda session: add_words(session, words, group)), as_json, ["id", "group", "word"])


@banned_word_app.command("remove")
def banned_word_remove(words: list[str], group: GroupOpt = None, as_json: JsonOpt = False) -> None:
    """Remove words from the list (from one group with --group, else from every group)."""
    from mjgate.moderation.admin import remove_words

    emit({"removed": run_in_transaction(lambda session: remove_words(session, words, group))}, as_json)


@banned_word_app.command("list")
def banned_word_list(group: GroupOpt = None, as_json: JsonOpt = False) -> None:
    """The banned words, by group."""
    from mjgate.moderation.admin import list_words

    rows = run_in_transaction(list_words)
    emit([r for r in rows if group is None or r["group"] == group], as_json, ["id", "group", "word"])


@user_app.command("blocks")
def user_blocks(all_blocks: Annotated[bool, typer.Option("--all", help="Also blocks that ended or were lifted.")]
                = False, as_json: JsonOpt = False) -> None:
    """Users blocked from submitting after banned-word hits."""
    from mjgate.moderation.admin import list_blocks

    rows = run_in_transaction(lambda session: list_blocks(session, active_only=not all_blocks))
    emit(rows, as_json, ["user_id", "username", "hits", "minutes", "until", "active"])


@user_app.command("unblock")
def user_unblock(name: str, as_json: JsonOpt = False) -> None:
    """Lift a user's moderation block now."""
    from mjgate.accounts.users import require_by_username
    from mjgate.moderation.admin import lift

    async def work(session):
        user = await require_by_username(session, name)
        return {"username": user.username, "lifted": await lift(session, user.id)}

    emit(run_in_transaction(work), as_json)


# ---------------------------------------------------------------- servers


def _start_demo(settings: Settings, sim_port: int):
    """Start the simulator and make sure an admin, a key and a channel point at it (created once)."""
    from mjgate import demo

    path = demo.credentials_path(settings)
    saved = demo.load_credentials(path)
    sim_secret = run_in_transaction(demo.demo_channel_secret)
    proc = demo.start_simulator(sim_port, sim_secret)
    try:
        creds, changed = run_in_transaction(lambda session: demo.ensure_demo_world(session, saved, sim_port,
                                                                                    sim_secret))
        if changed or saved != creds:
            demo.save_credentials(path, creds)
    except BaseException:
        proc.terminate()
        proc.wait(timeout=10)
        raise
    return proc, creds, not changed


def _refuse(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"mjgate serve: {message}", err=True)
    return typer.Exit(code)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Listen address (MJGATE_HOST).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Listen port (MJGATE_PORT).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Also run the simulator as a demo channel.")] = False,
    demo_port: Annotated[int, typer.Option(help="Simulator port in --demo mode.")] = 3100,
    server: Annotated[str, typer.Option(help="granian (default) or uvicorn.")] = "granian",
    workers: Annotated[int, typer.Option(help="Worker processes (granian).")] = 1,
    reuse_port: Annotated[bool, typer.Option(
        "--reuse-port", help="Set SO_REUSEPORT, so several gateways may listen on one port on purpose.")] = False,
) -> None:
    """Run the gateway (API, console and, by default, the poller).

    The port is bound first: a busy port ends the command (exit code 1) before anything is
    migrated, seeded or started.
    """
    from mjgate.logging import configure
    from mjgate.serving import WORKERS_WITHOUT_REDIS_COST, PortInUse, bind_listener, port_is_free, run_granian, \
        run_uvicorn

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    if workers < 1:
        raise _refuse("--workers must be at least 1", 2)
    if server not in ("granian", "uvicorn"):
        raise _refuse("--server must be granian or uvicorn", 2)
    if server == "uvicorn" and workers > 1:
        raise _refuse("--workers applies to granian only", 2)
    try:
        listener = bind_listener(host, port, reuse_port=reuse_port)
    except PortInUse as exc:
        raise _refuse(str(exc)) from None
    if demo and not port_is_free("127.0.0.1", demo_port):
        listener.close()
        raise _refuse(f"the demo simulator's port 127.0.0.1:{demo_port} is already in use "
                      "(a demo already running?); choose another --demo-port")
    configure(settings.log_level, settings.log_json)
    if workers > 1 and not settings.redis_url:
        typer.echo(f"mjgate serve: warning: {workers} workers without MJGATE_REDIS_URL: "
                   + "; ".join(WORKERS_WITHOUT_REDIS_COST) + ". Set MJGATE_REDIS_URL to share them.", err=True)
    _db_ready(settings)
    demo_proc = None
    if demo:
        from mjgate.demo import DemoError, banner

        try:
            demo_proc, creds, reused = _start_demo(settings, demo_port)
        except DemoError as exc:
            listener.close()
            raise _refuse(str(exc)) from None
        base = f"http://{host}:{port}"
        typer.echo(banner(base, creds, demo_port, reused) + f"  {demo_hint(base, creds.key)}\n")
    try:
        if server == "uvicorn":
            run_uvicorn(listener)
        else:
            run_granian(listener, workers=workers)
    finally:
        listener.close()
        if demo_proc is not None:
            demo_proc.terminate()
            demo_proc.wait(timeout=10)


@app.command()
def worker() -> None:
    """Run only the background loops (poller, webhooks) for scaled deployments; no HTTP."""
    import signal

    from mjgate.logging import configure
    from mjgate.worker_main import run_worker

    settings = get_settings()
    configure(settings.log_level, settings.log_json)
    _db_ready(settings)

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    asyncio.run(main())


@app.command(add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def simulator(ctx: typer.Context) -> None:
    """Run the midjourney-proxy simulator (`mjgate simulator --help` lists its options)."""
    from mjgate.simulator.__main__ import main as sim_main

    sim_main(ctx.args, prog="mjgate simulator")  # its own parser, --help included


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
