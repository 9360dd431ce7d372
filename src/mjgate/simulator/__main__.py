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
    "core_size": "tasks running at once (one midjourney-proxy account); buttons and modals count too",
    "queue_size": "tasks waiting beyond core_size, FIFO (code 22 + numberOfQueues); more are refused (code 23)",
    "first_queued_success": "answer code 1, not 22, to a waiting task with none ahead (what midjourney-proxy does)",
    "banned_words": "comma-separated words answered with code 24",
    "image_size": "pixels of one picture (a grid is twice as wide and high)",
    "notify": "POST task changes to each task's notifyHook",
    "seed": "seed for the random knobs (default: unseeded)",
    "public_base_url": "base of imageUrl (default: the address it listens on)",
    "default_mode": "mode of a submit with no /mj-fast|relax|turbo prefix and no --fast/--relax/--turbo flag",
    "no_fast_hours": "the account is out of fast hours: fast and turbo jobs are accepted, then end FAILURE with "
                     "failReason 'Credits exhausted: ... no fast hours left ...' (Midjourney's error embed, as "
                     "midjourney-proxy fails the job); relax jobs, describe and shorten run",
    "fast_hours": "fast GPU hours the account has; fast jobs spend their running time (turbo twice), and at 0 "
                  "they fail as with --no-fast-hours (default: unlimited)",
    "cancel_supported": "serve POST /mj/task/{id}/cancel; off: that route answers 404 like an upstream without it",
    "progress_images": "while IN_PROGRESS, imageUrl points at a blurred intermediate picture",
}


def build_parser(prog: str = "python -m mjgate.simulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="A fake midjourney-proxy upstream for tests, demos and benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port (printed on start)")
    defaults = SimulatorConfig()
    for f in dataclasses.fields(SimulatorConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = _HELP[f.name] if "(default" in _HELP[f.name] else f"{_HELP[f.name]} (default: {default!r})"
        if FIELD_KINDS[f.name] == "bool":
            # Two explicit flags, not BooleanOptionalAction: that one reads every "--no-..." as
            # False, which would turn --no-fast-hours (a knob named no_fast_hours) upside down.
            pair = parser.add_mutually_exclusive_group()
            pair.add_argument(flag, dest=f.name, action="store_const", const=True, help=help_text)
            pair.add_argument("--no-" + flag[2:], dest=f.name, action="store_const", const=False,
                              help=f"turn {flag} off")
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
