"""Public task ids: epoch milliseconds plus three random digits, the 16-digit shape midjourney-proxy
clients expect. Uniqueness is enforced by the database; a rare clash is retried with a new id."""

import secrets

from mjgate.clock import now_ms


def new_mj_id() -> str:
    return f"{now_ms()}{secrets.randbelow(1000):03d}"
