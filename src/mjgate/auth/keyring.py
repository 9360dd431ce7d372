"""One key per purpose, derived from the master secret (MJGATE_SECRET_KEY).

Each use of the master secret signs with its own key, HMAC-SHA256(master, "mjgate:<purpose>:v1"),
so a value signed for one purpose (an image URL, a notify URL) can never stand in for another (a
console session), and no key handed to anyone outside is the master. Client callbacks are not
signed from here at all: each user has a webhook secret of their own (accounts/webhook_secrets.py).

Before the split everything was signed with the master itself; `accepted(purpose)` still lists it
after the derived key, so sessions and image URLs handed out before stay valid until they expire.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

SESSION = "session"
CSRF = "csrf"
IMAGE_URL = "image-url"
NOTIFY_URL = "notify-url"
PURPOSES = (SESSION, CSRF, IMAGE_URL, NOTIFY_URL)


def derive(master: str, purpose: str) -> str:
    return hmac.new(master.encode(), f"mjgate:{purpose}:v1".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Keyring:
    master: str
    _keys: dict = field(default_factory=dict, compare=False, repr=False)

    def key(self, purpose: str) -> str:
        """The key new values for `purpose` are signed with."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown key purpose {purpose!r}")
        if purpose not in self._keys:
            self._keys[purpose] = derive(self.master, purpose)
        return self._keys[purpose]

    def accepted(self, purpose: str) -> tuple[str, str]:
        """Keys a presented value for `purpose` may be signed with: the derived one, then the
        master (values issued before the keys were split)."""
        return self.key(purpose), self.master
