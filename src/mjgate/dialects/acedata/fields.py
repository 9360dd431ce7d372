"""AceData's request fields, read leniently with errors in AceData's words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import Request

from mjgate.api.payloads import http_url, text_field
from mjgate.errors import BadRequest

MODES = ("fast", "relax", "turbo")
SYNC_TIMEOUT_DEFAULT_S = 300.0
SYNC_TIMEOUT_MAX_S = 600.0
MAX_BATCH_IDS = 1_000
NDJSON = "application/x-ndjson"


def boolean(body: dict, name: str) -> bool:
    value = body.get(name)
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise BadRequest(f"{name} must be true or false")


def mode(body: dict) -> str | None:
    value = text_field(body, "mode").strip().lower()
    if not value:
        return None
    if value not in MODES:
        raise BadRequest("mode must be fast, relax or turbo")
    return value


def timeout(body: dict) -> float:
    value = body.get("timeout")
    if value is None or value == "":
        return SYNC_TIMEOUT_DEFAULT_S
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise BadRequest("timeout must be a number of seconds") from None
    if isinstance(value, bool) or not seconds > 0:
        raise BadRequest("timeout must be a positive number of seconds")
    return min(seconds, SYNC_TIMEOUT_MAX_S)


def id_field(body: dict, *names: str) -> str:
    for name in names:
        value = body.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise BadRequest(f"{name} must be a string")
        text = str(value).strip()
        if not text or len(text) > 64:
            raise BadRequest(f"{name} is not a valid id")
        return text
    return ""


def str_list(body: dict, name: str) -> list[str]:
    values = body.get(name)
    if values is None or values == "":
        return []
    if not isinstance(values, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
        raise BadRequest(f"{name} must be an array of ids")
    if len(values) > MAX_BATCH_IDS:
        raise BadRequest(f"at most {MAX_BATCH_IDS} {name} per call")
    return list(dict.fromkeys(str(v).strip()[:64] for v in values if str(v).strip()))


def integer(body: dict, name: str, default: int, maximum: int | None = None) -> int:
    value = body.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise BadRequest(f"{name} must be an integer") from None
    if isinstance(value, bool) or number < 0:
        raise BadRequest(f"{name} must be a non-negative integer")
    return min(number, maximum) if maximum is not None else number


_VERSION = re.compile(r"^\d{1,2}(?:\.\d{1,2})?$")
_QUALITY = re.compile(r"^(?:\.25|\.5|0?\.\d{1,2}|[124])$")


def _has_param(prompt: str, *names: str) -> bool:
    return any(re.search(rf"(?:^|\s)--{n}(?:\s|$)", prompt) for n in names)


def prompt_with_params(body: dict, prompt: str) -> str:
    """AceData's version/quality/hd fields as Midjourney prompt parameters."""
    version = text_field(body, "version").strip()
    if version:
        if not _VERSION.match(version):
            raise BadRequest("version must look like 6, 6.1 or 7")
        if not _has_param(prompt, "v", "version", "niji"):
            prompt += f" --v {version}"
    quality = text_field(body, "quality").strip()
    if quality:
        if not _QUALITY.match(quality):
            raise BadRequest("quality must be one of .25, .5, 1, 2 or 4")
        if not _has_param(prompt, "q", "quality"):
            prompt += f" --q {quality}"
    if boolean(body, "hd") and not _has_param(prompt, "hd"):
        prompt += " --hd"
    return prompt


@dataclass(frozen=True)
class Delivery:
    """How the client wants the answer."""

    asynchronous: bool
    callback_url: str
    timeout_s: float
    stream: bool


def delivery(request: Request, body: dict) -> Delivery:
    return Delivery(asynchronous=boolean(body, "async"), callback_url=http_url(body, "callback_url"),
                    timeout_s=timeout(body), stream=NDJSON in request.headers.get("accept", "").lower())
