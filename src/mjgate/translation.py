"""Prompts into English through the translator the operator configures: any OpenAI-compatible chat
API (MJGATE_TRANSLATE_URL, MJGATE_TRANSLATE_KEY, MJGATE_TRANSLATE_MODEL).

Midjourney reads English. Only the words are sent: leading image URLs and trailing `--` parameters
are kept aside and put back unchanged, so a translator can neither mangle `--ar 16:9` nor leak an
image link. Without a translator, asking for one is `api_not_implemented` naming the setting.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp

from mjgate.bodies import BodyTooLarge, read_body
from mjgate.errors import BadRequest, GatewayError, Kind

MAX_ANSWER_BYTES = 1024 * 1024
INSTRUCTION = ("You translate Midjourney prompts into English. Answer with the English prompt only: no quotes, "
               "no explanations. Keep names, numbers and punctuation; if the text is already English, answer it "
               "unchanged.")
NOT_CONFIGURED = ("translation needs a translator, which this gateway does not have: set MJGATE_TRANSLATE_URL "
                  "(an OpenAI-compatible chat API; with MJGATE_TRANSLATE_KEY and MJGATE_TRANSLATE_MODEL)")


def chat_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def split_prompt(prompt: str) -> tuple[list[str], str, list[str]]:
    """(leading image URLs, the words, trailing `--` parameters) of a Midjourney prompt."""
    tokens = prompt.split()
    urls: list[str] = []
    while tokens and tokens[0].lower().startswith(("http://", "https://")):
        urls.append(tokens.pop(0))
    params: list[str] = []
    for i, token in enumerate(tokens):
        if token.startswith("--"):
            params, tokens = tokens[i:], tokens[:i]
            break
    return urls, " ".join(tokens), params


class Translator:
    def __init__(self, http: aiohttp.ClientSession, url: str | None, key: str | None, model: str,
                 timeout_s: float = 30.0):
        self.http = http
        self.url = chat_url(url) if url else None
        self.key = key
        self.model = model
        self.timeout_s = timeout_s

    @property
    def configured(self) -> bool:
        return self.url is not None

    def require(self) -> None:
        if self.url is None:
            raise BadRequest(NOT_CONFIGURED, code="api_not_implemented")

    async def english(self, text: str) -> str:
        """The text in English (just the words of a prompt: URLs and parameters stay as they are)."""
        self.require()
        urls, words, params = split_prompt(text)
        english = await self._chat(words) if words.strip() else ""
        return " ".join(part for part in (*urls, english, *params) if part)

    async def _chat(self, text: str) -> str:
        assert self.url is not None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        body = {"model": self.model, "temperature": 0,
                "messages": [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": text}]}
        try:
            async with self.http.post(self.url, json=body, headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
                raw = await read_body(resp.content, MAX_ANSWER_BYTES)
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, BodyTooLarge) as exc:
            raise _unavailable(f"{type(exc).__name__}: {exc}".strip(": ")) from None
        if status != 200:
            raise _unavailable(f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _unavailable("the answer is not a chat completion") from None
        if not isinstance(content, str) or not content.strip():
            raise _unavailable("the answer is empty")
        return " ".join(content.strip().strip('"').split())


def _unavailable(detail: str) -> GatewayError:
    return GatewayError(f"the translator could not translate: {detail}"[:500], status=502, code="api_error",
                        kind=Kind.UNAVAILABLE)
