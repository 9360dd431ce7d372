"""Credentials: generation, hashing at rest, password hashing and signed values.

Keys and access tokens are long random strings, so one sha256 is enough to store them:
there is nothing to brute-force. Passwords are short and human, so they get scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

API_KEY_PREFIX = "sk-"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(36).replace("-", "x").replace("_", "y")


def new_access_token() -> str:
    # new-api's dashboard tokens are 32 characters of [a-z0-9]; keep the shape clients expect.
    return secrets.token_hex(16)


WEBHOOK_SECRET_PREFIX = "whsec_"


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: "whsec_" + base64 of 32 random bytes (the HMAC key)."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def key_hint(key: str) -> str:
    return f"{key[:7]}…{key[-4:]}"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        # Burn comparable time so a missing user is not distinguishable by latency.
        hashlib.scrypt(password.encode(), salt=b"0" * 16, **_SCRYPT)
        return False
    _, salt_b64, digest_b64 = stored.split("$", 2)
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def sign(secret_key: str, message: str) -> str:
    mac = hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def verify_signature(secret_key: str, message: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret_key, message), signature or "")


def verify_any(keys, message: str, signature: str) -> bool:
    """True when `signature` is `message` signed with any of `keys` (one key: a str)."""
    keys = (keys,) if isinstance(keys, str) else keys
    return any(verify_signature(key, message, signature) for key in keys)
