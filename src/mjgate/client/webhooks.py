"""Checking that a callback really comes from the gateway: `verify_webhook(headers, body, secret)`.

Two schemes are accepted, so a receiver keeps working while the gateway moves from one to the other:

* Standard Webhooks (https://www.standardwebhooks.com), what the gateway sends: `webhook-id` (the
  same on every retry of one callback: de-duplicate on it), `webhook-timestamp` and
  `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` (several signatures may
  be listed, space-separated, during a key rotation), with the user's own `whsec_<base64 key>`
  secret (`mjgate user webhook-secret NAME --json`, or the console's settings). The signing itself
  is the reference library's (`standardwebhooks`); the timestamp window is ours, because the
  library fixes it at five minutes.
* what gateways before per-user secrets sent: `X-Mjgate-Signature: t=<unix seconds>,v1=<hex
  HMAC-SHA256 of "t.body">`, keyed with the secret string as it is (that gateway's MJGATE_SECRET_KEY).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from mjgate.client.errors import WebhookVerificationError

DEFAULT_TOLERANCE_S = 300
LEGACY_HEADER = "x-mjgate-signature"


def _lowered(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(k).lower(): str(v) for k, v in items}


def _check_time(raw: str, now: float, tolerance_s: float) -> int:
    try:
        timestamp = int(raw.strip())
    except ValueError:
        raise WebhookVerificationError(f"webhook timestamp {raw[:40]!r} is not a number") from None
    if timestamp < now - tolerance_s:
        raise WebhookVerificationError(f"webhook timestamp is {int(now - timestamp)} s old "
                                       f"(tolerance {tolerance_s:g} s)")
    if timestamp > now + tolerance_s:
        raise WebhookVerificationError(f"webhook timestamp is {int(timestamp - now)} s in the future")
    return timestamp


def _standard(headers: dict[str, str], body: bytes, secret: str, now: float, tolerance_s: float) -> None:
    from standardwebhooks import Webhook

    msg_id, raw_ts, signatures = (headers.get(h, "") for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and raw_ts and signatures):
        raise WebhookVerificationError("webhook-id, webhook-timestamp and webhook-signature are all required")
    timestamp = _check_time(raw_ts, now, tolerance_s)
    try:
        signer = Webhook(secret)
    except Exception as exc:  # binascii.Error, or the library's EmptyWebhookSecretError
        raise WebhookVerificationError(f"the webhook secret is not a whsec_<base64> key: {exc}") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookVerificationError("webhook body is not UTF-8") from None
    expected = signer.sign(msg_id, datetime.fromtimestamp(timestamp, tz=timezone.utc), text).split(",", 1)[1]
    expected_bytes = base64.b64decode(expected)
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue  # other versions (v1a: asymmetric) are not ours to check
        try:
            candidate = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(candidate, expected_bytes):
            return
    raise WebhookVerificationError("no webhook-signature matches the secret")


def _legacy(header: str, body: bytes, secret: str, now: float, tolerance_s: float) -> None:
    parts = [p.strip().partition("=") for p in header.split(",")]
    raw_ts = next((v for k, _, v in parts if k == "t"), "")
    macs = [v for k, _, v in parts if k == "v1" and v]
    if not raw_ts or not macs:
        raise WebhookVerificationError("X-Mjgate-Signature must look like t=<unix>,v1=<hex>")
    _check_time(raw_ts, now, tolerance_s)
    expected = hmac.new(secret.encode(), raw_ts.strip().encode() + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, mac.strip().lower()) for mac in macs):
        raise WebhookVerificationError("X-Mjgate-Signature does not match the secret")


def verify_webhook(headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes | str,
                   secret: str | Iterable[str], *, tolerance_s: float = DEFAULT_TOLERANCE_S,
                   now: float | None = None) -> Any:
    """Check a callback's signature and freshness; return its JSON payload, or raise WebhookVerificationError.

    `body` must be the raw bytes as received (re-serialised JSON does not verify). `secret` may be
    several secrets (old and new during a rotation, or a whsec_ key and the legacy secret): the
    callback is genuine when any of them verifies it under a scheme whose headers it carries.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    lowered = _lowered(headers)
    secrets_ = [secret] if isinstance(secret, str) else list(secret)
    if not any(secrets_):
        raise WebhookVerificationError("no webhook secret given")
    clock = time.time() if now is None else now
    checks = []
    if "webhook-signature" in lowered or "webhook-id" in lowered:
        checks.append(lambda s: _standard(lowered, raw, s, clock, tolerance_s))
    if LEGACY_HEADER in lowered:
        checks.append(lambda s: _legacy(lowered[LEGACY_HEADER], raw, s, clock, tolerance_s))
    if not checks:
        raise WebhookVerificationError("the request carries no webhook signature headers")
    first_error: WebhookVerificationError | None = None
    for check in checks:
        for candidate in secrets_:
            if not candidate:
                continue
            try:
                check(candidate)
            except WebhookVerificationError as exc:
                first_error = first_error or exc
                continue
            try:
                return json.loads(raw)
            except ValueError:
                raise WebhookVerificationError("the signed webhook body is not JSON") from None
    assert first_error is not None
    raise first_error
