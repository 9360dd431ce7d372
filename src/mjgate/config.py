"""Every setting, read from MJGATE_* environment variables or a .env file.

This is the one place settings are documented; `docs/settings.md` is generated from it
by `mjgate settings`.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MJGATE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "",  # filled in from data_dir below
        description="SQLAlchemy URL. postgresql://, mysql:// and mariadb:// are mapped to their async drivers. "
        "Default: SQLite in MJGATE_DATA_DIR (data_dir/mjgate.db).",
    )
    data_dir: Path = Field(Path("./data"), description="Where the SQLite file, the secret key and stored images live.")
    redis_url: str | None = Field(
        None, description="Optional Redis for shared rate limits, cross-instance events, and cache invalidation "
        "(a key, user, channel or price changed on one instance or by a CLI command is seen by every other instance "
        "at once). A Redis that is down (at start or later) is not fatal: events and rate limits are per process "
        "and caches expire by their TTL until it returns, and /readyz reports `redis` as ok, degraded or off.",
    )
    secret_key: str | None = Field(
        None,
        description="Signs session cookies and image URLs. Default: generated once into data_dir/secret_key. "
        "Set it explicitly when several instances serve one database.",
    )
    public_url: str | None = Field(
        None, description="Absolute base URL clients reach the gateway at; default: taken from each request."
    )
    host: str = Field("127.0.0.1", description="Listen address of `mjgate serve`.")
    port: int = Field(3000, description="Listen port of `mjgate serve`.")
    db_pool_size: int = Field(
        20, description="Connections kept open per engine (PostgreSQL/MySQL; SQLite: readers, at most 8). Size it to "
        "the database work in flight at once, not to the clients: a request holds a connection only while its "
        "statements run, never while the upstream answers.")
    db_max_overflow: int = Field(
        10, description="Extra PostgreSQL/MySQL connections opened in a burst beyond MJGATE_DB_POOL_SIZE, closed "
        "again when they come back to a full pool (opening one costs more than the query it serves).")
    pg_statement_cache_size: int = Field(
        100, description="asyncpg prepared statement cache; set 0 behind PgBouncer in transaction mode."
    )
    relay_auth_cache_s: float = Field(
        2.0, description="How long an authenticated API key (and its owner) is reused without a database "
        "read. Disabling a key or user through the admin API or console takes effect at once on that instance; with "
        "MJGATE_REDIS_URL on every instance (CLI changes too); otherwise within this time. 0 turns the cache off.",
    )
    session_ttl_s: int = Field(7 * 24 * 3600, description="Console session cookie lifetime.")
    image_url_ttl_s: int = Field(7 * 24 * 3600, description="Lifetime of signed image URLs handed to clients.")
    task_retention_days: int = Field(
        0, ge=0, description="Remove finished tasks older than this many days, with their stored images, in "
        "bounded batches (the quota ledger is kept: its rows lose the task reference and name the task in "
        "their memo). 0 keeps every task.",
    )
    task_timeout_s: int = Field(3600, description="An unfinished task older than this fails and is refunded.")
    moderation_hits_per_day: int = Field(
        5, ge=0, description="Prompts refused for a banned word (by the gateway's list or the upstream's own "
        "moderation) within a day that block the user from submitting. 0: hits are counted, nobody is blocked.",
    )
    moderation_block_minutes: int = Field(
        60, ge=1, description="How long the first block lasts; each further block within 30 days lasts twice "
        "as long as the one before. Admins lift blocks with `mjgate user unblock` or the admin API.",
    )
    poller_enabled: bool = Field(True, description="Run the background poller inside `mjgate serve`.")
    poller_batch_size: int = Field(500, description="Tasks leased per poller cycle.")
    poller_interval_s: float = Field(1.0, description="Poller sleep when nothing is due.")
    poller_lease_s: float = Field(60.0, description="How long a poller instance owns the tasks it claimed; "
                                  "a crashed instance's tasks are polled by others after this.")
    queue_max_wait_s: int = Field(
        1800, ge=1, description="A task waiting in the gateway queue (no channel had room) longer than this fails "
        "and is refunded. Never longer than MJGATE_TASK_TIMEOUT_S.")
    dispatcher_interval_s: float = Field(
        5.0, gt=0, description="The dispatcher looks at the queue at least this often; it is woken at once when a "
        "task finishes or is queued.")
    breaker_failures: int = Field(3, ge=1, description="Failures in a row that put a channel in cooldown.")
    breaker_cooldown_s: float = Field(
        30.0, gt=0, description="The first cooldown of a failing channel; doubled for each cooldown in a row "
        "(at most 10 minutes).")
    breaker_disable_after: int = Field(
        3, ge=1, description="Cooldowns in a row after which a channel is auto-disabled (the probe re-enables it).")
    probe_interval_s: float = Field(30.0, gt=0, description="How often auto-disabled channels are probed.")
    alert_webhook_url: str = Field(
        "", description="Where channel alerts (cooldown, auto-disabled, re-enabled) are POSTed as JSON; empty = "
        "log, metrics and the console only.")
    callback_url: str | None = Field(
        None, description="Base URL upstream channels can reach the gateway at, for instant updates "
        "(notifyHook). Default: MJGATE_PUBLIC_URL, else the URL the client called.",
    )
    upstream_callbacks: bool = Field(True, description="Ask upstreams to push task changes to the gateway.")
    upstream_submit_timeout_s: float = Field(
        30.0, gt=0, le=600, description="How long a submit waits for the upstream's answer. An answer that does not "
        "come may still mean the job was taken: the task keeps its channel and charge, is adopted when the "
        "upstream's callback names it, and fails with a refund if nothing comes within 2 minutes.",
    )
    webhook_allow_private: bool = Field(
        False, description="Deliver client callbacks (notifyHook, callback_url) to loopback and private "
        "addresses too. Off by default: clients choose these URLs, so they could aim them at the gateway's network; "
        "a submit naming such a URL is then refused with a clear error.",
    )
    trusted_proxies: str = Field(
        "", description="Comma-separated addresses or networks of reverse proxies in front of the gateway "
        "(e.g. '127.0.0.1, 10.0.0.0/8'). Only when a request comes from one of them is the client's address "
        "taken from X-Forwarded-For (for login throttling and API keys' allowed_ips). Empty: the TCP peer.",
    )
    rate_limit_per_minute: int = Field(
        120, description="Requests per minute per API key on the AceData-style API (/midjourney/...); bursts up "
        "to the same number are allowed. Shared across instances through MJGATE_REDIS_URL when set. 0 = no limit.",
    )
    image_store: str = Field("local", description="Keep a copy of each final image: 'local' (data_dir/images), "
                             "'s3' (an S3-compatible bucket shared by several instances; MJGATE_S3_*) "
                             "or 'none' (always stream from the upstream).")
    image_store_max_mb: int = Field(100, description="Largest image the store copies.")
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint for MJGATE_IMAGE_STORE=s3 (MinIO, R2, ...). "
        "Default: AWS S3 in MJGATE_S3_REGION.",
    )
    s3_bucket: str | None = Field(None, description="Bucket of the S3 image store (must exist).")
    s3_region: str = Field("us-east-1", description="Region the S3 requests are signed for (R2: 'auto').")
    s3_access_key_id: str | None = Field(
        None, description="Access key id of the S3 image store. Unset (with the secret): the default AWS "
        "credential chain (AWS_* variables, profiles, web identity/STS, container or instance credentials).",
    )
    s3_secret_access_key: SecretStr | None = Field(None, description="Secret access key of the S3 image store.")
    s3_addressing: Literal["path", "virtual"] = Field(
        "path", description="S3 addressing: 'path' ({endpoint}/{bucket}/{key}, what MinIO-style endpoints "
        "need) or 'virtual' ({bucket}.{endpoint host}/{key}).",
    )
    s3_max_attempts: int = Field(5, ge=1, description="Attempts per S3 request (botocore's standard retry mode).")
    s3_prefix: str = Field("images/", description="Key prefix of stored images in the S3 bucket.")
    translate_url: str | None = Field(
        None, description="An OpenAI-compatible chat API that turns prompts into English for AceData's "
        "/midjourney/translate and `translation: true` (e.g. https://api.openai.com/v1; the gateway POSTs to "
        "{url}/chat/completions, or to the URL itself when it already ends in /chat/completions). Unset: those "
        "answer api_not_implemented.",
    )
    translate_key: SecretStr | None = Field(None, description="Bearer key of MJGATE_TRANSLATE_URL, if it needs one.")
    translate_model: str = Field("gpt-4o-mini", description="The model MJGATE_TRANSLATE_URL is asked to translate with.")
    translate_timeout_s: float = Field(30.0, gt=0, le=300, description="How long one translation may take.")
    log_level: str = Field("INFO", description="Log level.")
    log_json: bool = Field(False, description="Log as JSON lines instead of console text.")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        from mjgate.auth.client_address import parse_networks

        parse_networks(value)  # a bad entry fails at start, not at the first login
        return value

    @model_validator(mode="after")
    def _database_in_data_dir(self) -> Settings:
        # The server and the CLI find the database where they find the secret key and the images.
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'mjgate.db'}"
        return self

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        return _persistent_secret(self.data_dir)


def _persistent_secret(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together agree on the first key written.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
