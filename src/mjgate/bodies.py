"""Reading whole HTTP bodies from aiohttp, bounded in size.

`StreamReader.read(n)` returns what happens to be buffered (at most n bytes), not n bytes: a
174 KB list-by-condition answer arrived as its first 127 KB, was taken for "not JSON", and its
tasks were never updated. Every body the gateway parses is read to its end through here.
"""

from __future__ import annotations

import aiohttp


class BodyTooLarge(ValueError):
    pass


async def read_body(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as more than `limit` bytes have arrived."""
    data = bytearray()
    async for chunk in content.iter_any():
        data += chunk
        if len(data) > limit:
            raise BodyTooLarge(f"answer larger than {limit} bytes")
    return bytes(data)


async def read_head(content: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to the first `limit` bytes (fewer only if the body is shorter)."""
    data = bytearray()
    async for chunk in content.iter_any():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])
