"""Where the client finds its gateway: `$XDG_CONFIG_HOME/mjgate/client.toml` (written by
`mjgate login`, mode 0600 because it holds a key), overridden by MJGATE_URL / MJGATE_KEY."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mjgate.client.errors import MjgateError

URL_ENV = "MJGATE_URL"
KEY_ENV = "MJGATE_KEY"


@dataclass(frozen=True)
class ClientConfig:
    url: str | None
    key: str | None
    auth: str = "bearer"
    path: Path | None = None


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mjgate" / "client.toml"


def load_config(path: Path | None = None) -> ClientConfig:
    path = path or config_path()
    stored: dict = {}
    if path.is_file():
        try:
            stored = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
            raise MjgateError(f"cannot read {path}: {exc}") from None
    url = os.environ.get(URL_ENV) or stored.get("url") or None
    key = os.environ.get(KEY_ENV) or stored.get("key") or None
    auth = str(stored.get("auth") or "bearer")
    return ClientConfig(url=url, key=key, auth=auth, path=path)


def save_config(url: str, key: str, auth: str = "bearer", path: Path | None = None) -> Path:
    """Write the file readable by its owner only, created that way (never briefly world-readable)."""
    import tomli_w

    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = tomli_w.dumps({"url": url, "key": key, "auth": auth})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an older file may have had wider rights
        handle.write("# mjgate client settings, written by `mjgate login`.\n" + text)
    return path
