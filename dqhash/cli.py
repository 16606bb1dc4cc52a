"""The ``dqhash`` command: thin shells over the library, one subcommand each."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import BinaryIO, TextIO

import orjson

from dqhash.core.canonical import CanonicalError
from dqhash.core.hashing import ALGORITHMS, STRATEGIES, HashConfigError, RowHasher, parse_type_declarations
from dqhash.core.jsontext import loads_exact

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM (docker stop, kill, a test harness) unwinds like Ctrl-C, so every command
    # cleans up what it started (the embedded broker, workers, temporary state).
    signal.signal(signal.SIGTERM, _terminate)
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return int(args.run(args) or 0)


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dqhash", description=__doc__)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    hash_cmd = commands.add_parser(
        "hash",
        help="hash JSON Lines rows from stdin with the canonical row hash",
        description="Read one JSON object (a row) per line on stdin; print one hash per line "
        "(strategy:hex), or with --columns one JSON object with per-column digests. "
        "A bad line is reported on stderr by number, printed as an empty line, and makes "
        "the exit status 1 once every other line is hashed.",
    )
    hash_cmd.add_argument("--strategy", default="v2", help=f"hash strategy: {' | '.join(STRATEGIES)} (default v2)")
    hash_cmd.add_argument("--algorithm", default="sha256", help=f"digest algorithm: {' | '.join(ALGORITHMS)}")
    hash_cmd.add_argument("--fields", help="comma-separated columns to hash (default: every column of the row)")
    hash_cmd.add_argument(
        "--types",
        help="comma-separated column=cqltype declarations, e.g. ts=timestamp,amount=decimal "
        "(JSON has no timestamp or decimal type; declare such columns so both sides agree)",
    )
    hash_cmd.add_argument("--columns", action="store_true", help="print JSON with per-column digests")
    hash_cmd.set_defaults(run=_run_hash)

    demo = commands.add_parser(
        "demo",
        help="run the whole pipeline on a mixed workload and check every outcome (embedded broker "
        "unless DQHASH_BROKER is set)",
    )
    demo.add_argument("--events", type=int, default=10_000, help="on-prem records to send (default 10000)")
    demo.set_defaults(run=lambda args: _demo(args.events))

    broker = commands.add_parser("broker", help="run the embedded Kafka-compatible broker in the foreground")
    broker.add_argument("--port", type=int, default=9092, help="loopback port (default 9092)")
    broker.set_defaults(run=lambda args: _broker(args.port))

    topics = commands.add_parser("topics", help="manage dqhash's Kafka topics")
    topic_commands = topics.add_subparsers(title="topics commands", metavar="ACTION")
    create = topic_commands.add_parser(
        "create", help="create every topic with co-partitioned counts and configs; verify existing ones"
    )
    create.set_defaults(run=lambda args: _topics_create())

    bench = commands.add_parser(
        "bench", help="one worker end to end on the embedded broker (or DQHASH_BROKER), with same-run floors"
    )
    bench.add_argument("--pairs", type=int, default=200_000, help="on-prem events to pre-load (default 200,000)")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bench.set_defaults(run=lambda args: _bench(args.pairs, args.json))

    bench_domain = commands.add_parser(
        "bench-domain", help="throughput of parse, hash and classify on one core, next to a bare orjson+sha256 floor"
    )
    bench_domain.add_argument("--records", type=int, default=100_000, help="records per measurement (default 100000)")
    bench_domain.add_argument("--json", action="store_true", help="print one JSON object")
    bench_domain.set_defaults(run=lambda args: _bench_domain(args.records, args.json))
    return parser


def _run_hash(args: argparse.Namespace, stdin: BinaryIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin.buffer  # bytes: invalid UTF-8 is one line's error, not the end of the input
    stdout = stdout or sys.stdout
    try:
        hasher = RowHasher(
            strategy=args.strategy,
            fields=_split(args.fields),
            types=parse_type_declarations(args.types),
            algorithm=args.algorithm,
        )
    except (HashConfigError, CanonicalError) as exc:
        print(f"dqhash hash: {exc}", file=sys.stderr)
        return EXIT_USAGE
    bad = 0
    for number, line in enumerate(stdin, start=1):
        try:
            out = _hash_line(hasher, line, number, args.columns)
        except (ValueError, CanonicalError) as exc:  # JsonTextError and CanonicalError are ValueErrors
            bad += 1
            print(f"dqhash hash: line {number}: {exc}", file=sys.stderr)
            out = ""  # every input line has its output line, so the two stay aligned
        stdout.write(out + "\n")
    if bad:
        print(f"dqhash hash: {bad} bad line(s); the others were hashed", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def _hash_line(hasher: RowHasher, line: bytes, number: int, with_columns: bool) -> str:
    if not line.strip(b" \t\r\n"):
        raise ValueError("blank line; expected a JSON object")
    row = loads_exact(line)
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    digest = hasher.hash(row)
    if not with_columns:
        return str(digest)
    return orjson.dumps({"line": number, "hash": str(digest), "columns": hasher.column_digests(row)}).decode()


def _demo(events: int) -> int:
    if events < 100:
        print("dqhash demo: --events must be at least 100 (every scenario needs a share)", file=sys.stderr)
        return EXIT_USAGE
    from dqhash.tools import demo

    return demo.main(events)


def _broker(port: int) -> int:
    from dqhash.kafka.embedded_broker import BrokerError, EmbeddedBroker

    broker = EmbeddedBroker(port=port)
    try:
        broker.start()
    except BrokerError as exc:
        print(f"dqhash broker: {exc}", file=sys.stderr)
        return 1
    print(f"embedded broker listening: DQHASH_BROKER={broker.url}  (Ctrl-C to stop; memory only)", flush=True)
    try:
        broker.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def _topics_create() -> int:
    import asyncio

    from dqhash import settings as settings_module
    from dqhash.kafka.topics import TopicMismatch, create_topics, topic_plan

    try:
        settings = settings_module.load()
        created = asyncio.run(create_topics(settings))
    except (settings_module.SettingsError, TopicMismatch) as exc:
        print(f"dqhash topics create: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # broker unreachable and the like
        print(
            f"dqhash topics create: cannot reach the broker at {os.environ.get('DQHASH_BROKER', 'kafka://127.0.0.1:9092')}"
            f" ({type(exc).__name__}: {exc}); is DQHASH_BROKER right?",
            file=sys.stderr,
        )
        return 1
    for spec in topic_plan(settings):
        state = "created" if spec.name in created else "exists"
        print(f"{state:8s} {spec.name:40s} partitions={spec.partitions} {spec.role}")
    return EXIT_OK


def _bench(pairs: int, as_json: bool) -> int:
    if pairs < 1000:
        print("dqhash bench: --pairs must be at least 1000", file=sys.stderr)
        return EXIT_USAGE
    from dqhash.tools.bench import pipeline

    return pipeline.main(pairs, as_json)


def _bench_domain(records: int, as_json: bool) -> int:
    from dqhash.tools.bench import domain  # imported on use: it builds large sample data

    return domain.main(records, as_json)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",")]


if __name__ == "__main__":
    sys.exit(main())
