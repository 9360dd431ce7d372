"""`python -m mjgate.simulator --port 8081 --secret s --step-seconds 0.05 ...`

One option per SimulatorConfig field, named after it (`step_seconds` → `--step-seconds`), so the
command line cannot drift from the config.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from . import run
from .config import FIELD_KINDS, SimulatorConfig, coerce

_HELP = {
    "secret": "required mj-api-secret header value (empty: no check)",
    "step_seconds": "seconds between progress steps",
    "steps": "IN_PROGRESS progress steps before SUCCESS",
    "start_delay_seconds": "seconds from SUBMITTED to the first progress step",
    "failure_rate": "fraction of accepted tasks that end in FAILURE",
    "error_rate": "fraction of /mj requests answered HTTP 500",
    "malformed_rate": "fraction of /mj requests answered 200 with a body that is not JSON",
    "slow_seconds": "extra delay before answering each /mj request",
    "forget_rate": "fraction of accepted tasks that are never seen again",
    "core_size": "tasks running at once",
    "queue_size": "tasks waiting beyond core_size (code 22); more are refused (code 23)",
    "banned_words": "comma-separated words answered with code 24",
    "image_size": "pixels of one picture (a grid is twice as wide and high)",
    "notify": "POST task changes to each task's notifyHook",
    "seed": "seed for the random knobs (default: unseeded)",
    "public_base_url": "base of imageUrl (default: the address it listens on)",
}


def build_parser(prog: str = "python -m mjgate.simulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="A fake midjourney-proxy upstream for tests, demos and benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port (printed on start)")
    defaults = SimulatorConfig()
    for f in dataclasses.fields(SimulatorConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = f"{_HELP[f.name]} (default: {default!r})"
        if FIELD_KINDS[f.name] == "bool":
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, metavar=f.name.upper(), help=help_text)
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    defaults = SimulatorConfig()
    given = {}
    for f in dataclasses.fields(SimulatorConfig):
        raw = getattr(args, f.name)
        if raw is not None:
            given[f.name] = coerce(f.name, raw, getattr(defaults, f.name))
    return SimulatorConfig(**given)


def main(argv: list[str] | None = None, prog: str = "python -m mjgate.simulator") -> None:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    run(config, host=args.host, port=args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
