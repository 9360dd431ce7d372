"""`mjgate` / `python -m mjgate`: the client commands start without importing the server.

`mjgate imagine ...` needs only HTTP, so it runs from mjgate.client.cli's small app (no SQLAlchemy,
no Alembic, no FastAPI to import); every other command, and `mjgate --help`, goes to the full app
in mjgate.cli, where the client commands are registered too.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    from mjgate.client.cli import COMMANDS

    if args and args[0] in COMMANDS:
        from mjgate.client.cli import app

        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        app(args=args, prog_name="mjgate")
        return
    from mjgate.cli import main as server_main

    server_main()


if __name__ == "__main__":
    main()
