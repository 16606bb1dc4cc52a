"""``dqhash demo``: the whole pipeline on a mixed workload, every outcome checked."""

from __future__ import annotations

import argparse
from typing import Any

from dqhash.cli.common import EXIT_USAGE, command, fail


def add(commands: Any) -> None:
    parser = command(
        commands,
        "demo",
        "run the whole pipeline on a mixed workload and check every outcome (embedded broker unless "
        "DQHASH_BROKER is set)",
        reads=("DQHASH_BROKER",),
    )
    parser.add_argument("--events", type=int, default=10_000, help="on-prem records to send (default 10000)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="after the report, keep the broker and the worker running (dashboard, views, dqhash tail) until Ctrl-C",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.events < 100:
        return fail("demo", "--events must be at least 100 (every scenario needs a share)", EXIT_USAGE)
    from dqhash.tools import demo

    return demo.main(args.events, args.keep)
