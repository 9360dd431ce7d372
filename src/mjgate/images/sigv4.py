"""AWS Signature Version 4 for requests to an S3-compatible store (header-based, hashlib/hmac only).

    headers = sign_v4("GET", url, {"host": host, "x-amz-content-sha256": EMPTY_SHA256}, EMPTY_SHA256,
                      credentials, region="us-east-1", service="s3")

The request path is signed as it appears in the (already percent-encoded) URL, which is S3's rule;
the gateway builds its object URLs with `uri_encode(key, safe="/")`. Other AWS services also
normalize and double-encode the path: not needed here, and not done.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)


def uri_encode(value: str, safe: str = "") -> str:
    """Percent-encode everything but A-Z a-z 0-9 - _ . ~ (and `safe`), as SigV4 requires."""
    return quote(value, safe=safe)  # quote keeps exactly the unreserved set (plus `safe`)


def canonical_query(query: str) -> str:
    pairs = [(uri_encode(k), uri_encode(v)) for k, v in parse_qsl(query, keep_blank_values=True)]
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """(canonical header block, signed header list) for the headers given."""
    items = sorted((name.lower().strip(), _SPACES.sub(" ", str(value).strip())) for name, value in headers.items())
    block = "".join(f"{name}:{value}\n" for name, value in items)
    return block, ";".join(name for name, _ in items)


def canonical_request(method: str, url: str, headers: Mapping[str, str], payload_sha256: str) -> str:
    parts = urlsplit(url)
    block, signed = canonical_headers(headers)
    return "\n".join([method.upper(), parts.path or "/", canonical_query(parts.query), block, signed, payload_sha256])


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_access_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign_v4(method: str, url: str, headers: Mapping[str, str], payload_sha256: str, credentials: Credentials, *,
            region: str, service: str, now: datetime | None = None) -> dict[str, str]:
    """`headers` (which must include host) plus X-Amz-Date and Authorization, all of them signed."""
    if not any(name.lower() == "host" for name in headers):
        raise ValueError("the host header must be signed")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    signed_headers = {**{k: v for k, v in headers.items() if k.lower() != "x-amz-date"}, "x-amz-date": amz_date}
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    canonical = canonical_request(method, url, signed_headers, payload_sha256)
    signature = hmac.new(signing_key(credentials.secret_access_key, date, region, service),
                         string_to_sign(amz_date, scope, canonical).encode(), hashlib.sha256).hexdigest()
    _, signed_list = canonical_headers(signed_headers)
    authorization = (f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
                     f"SignedHeaders={signed_list}, Signature={signature}")
    return {**signed_headers, "Authorization": authorization}
