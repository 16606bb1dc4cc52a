"""The ``dqhash`` command: thin shells over the library, one module per subcommand.

Each module's ``add(commands)`` declares its subcommand (and the environment variables it reads, listed by its
``--help`` from the settings' declarations); its ``run`` functions return the exit status.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from dqhash.cli import (
    bench,
    broker,
    cassandra,
    catalog,
    datadog,
    demo,
    generate,
    hash,
    repair,
    report,
    snapshot,
    tail,
    topics,
)
from dqhash.cli.common import EXIT_USAGE

#: the subcommands, in the order ``dqhash --help`` lists them
COMMANDS = (hash, demo, broker, topics, bench, snapshot, catalog, cassandra, report, repair, tail, datadog, generate)


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM (docker stop, kill, a test harness) unwinds like Ctrl-C, so every command
    # cleans up what it started (the embedded broker, workers, temporary state).
    signal.signal(signal.SIGTERM, _terminate)
    # a command says in one line what failed and what to check; the Kafka client's own reconnect errors
    # would print a line per attempt before it
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return int(args.run(args) or 0)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dqhash",
        description="Streaming data-quality service: proves record by record that a cloud copy holds the same data "
        "as the on-prem source. The worker itself runs as `faust -A dqhash.app worker` (README).",
    )
    parser.add_argument("--version", action=_Version, help="show the version, and which paths run compiled")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMANDS:
        module.add(commands)
    return parser


class _Version(argparse.Action):
    """``--version``, worked out only when asked: it imports the hasher and the engine to see how they were built."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: str | None = None) -> None:
        print(f"dqhash {_version()} (hasher: {_hasher_path()}; engine: {_engine_path()})")
        parser.exit()


def _hasher_path() -> str:
    """Which hasher this install runs: the compiled path is built only where a C compiler was at install time."""
    from dqhash.core import compiled_hasher

    backend = compiled_hasher.sha256_backend()
    return f"compiled, {backend} SHA-256" if backend else "pure Python (the compiled path is not built)"


def _engine_path() -> str:
    """Whether the record's hot path runs compiled: in a wheel built where a C compiler was (setup.py)."""
    from dqhash.core import compiled_engine

    return compiled_engine.describe()


def _version() -> str:
    try:
        return version("dqhash")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"
