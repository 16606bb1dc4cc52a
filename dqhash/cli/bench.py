"""``dqhash bench`` and ``dqhash bench-domain``: benchmarks that print numbers and same-run ratios."""

from __future__ import annotations

import argparse
from typing import Any

from dqhash.cli.common import EXIT_USAGE, command, fail


def add(commands: Any) -> None:
    bench = command(
        commands,
        "bench",
        "one worker end to end on the embedded broker (or DQHASH_BROKER), with same-run floors",
        reads=("DQHASH_BROKER",),
    )
    bench.add_argument("--pairs", type=int, default=200_000, help="on-prem events to pre-load (default 200,000)")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bench.add_argument(
        "--snapshot-rows",
        type=int,
        help="instead: a whole-table snapshot run of this many rows (rows/s, peak RSS; docs/snapshots.md)",
    )
    bench.add_argument(
        "--chunks-per-range",
        type=int,
        default=0,
        help="with --snapshot-rows: also the same run proven chunk by chunk (snapshot --chunks-per-range), as a "
        "ratio to the run row by row",
    )
    bench.add_argument(
        "--workers", type=int, default=1, help="also run on this many workers, as a ratio to one (default 1)"
    )
    bench.add_argument(
        "--tables",
        type=int,
        help="instead: --pairs pairs in one table, then spread over this many tables, as ratios in the same run, "
        "and a snapshot run of that many tables (docs/performance.md)",
    )
    bench.add_argument(
        "--table-rows",
        type=int,
        default=1000,
        help="with --tables: rows of each table in the snapshot run (0: no snapshot run)",
    )
    bench.add_argument(
        "--source",
        help="instead: a snapshot publish read from this PostgreSQL database (a scratch schema dqhash_bench is "
        "made and its table dropped), against the bare hasher (docs/source.md)",
    )
    bench.add_argument("--source-rows", type=int, default=200_000, help="with --source: rows (default 200,000)")
    bench.add_argument(
        "--hold-keys",
        type=int,
        help="instead: a worker's memory as it holds up to this many keys, restored from its changelog in five "
        "steps, each with a live load of --pairs pairs (docs/performance.md)",
    )
    bench.add_argument(
        "--pending",
        action="store_true",
        help="with --hold-keys: the keys held are pairs still waiting for their cloud side (their deadline a day "
        "away), as a long grace or a lagging cloud topic leaves them",
    )
    bench.set_defaults(run=run)

    domain = command(
        commands,
        "bench-domain",
        "throughput of parse, hash and classify on one core, next to a bare orjson+sha256 floor",
    )
    domain.add_argument(
        "--records", type=int, default=None, help="records per measurement (default 100000; 5000 with --instructions)"
    )
    domain.add_argument(
        "--instructions",
        action="store_true",
        help="instead, count the instructions a record costs the engine under valgrind: a figure the machine's "
        "load does not move, to compare two versions of the code (docs/performance.md)",
    )
    domain.add_argument("--json", action="store_true", help="print one JSON object")
    domain.set_defaults(run=run_domain)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.workers <= 8:
        return fail("bench", "--workers must be between 1 and 8", EXIT_USAGE)
    if args.source is not None:
        if args.source_rows < 1000:
            return fail("bench", "--source-rows must be at least 1000", EXIT_USAGE)
        from dqhash.tools.bench import source

        return source.main(args.source, args.source_rows, args.json)
    if args.tables is not None:
        if not 2 <= args.tables <= 10_000 or args.pairs < args.tables:
            return fail("bench", "--tables must be between 2 and 10000, and at most --pairs", EXIT_USAGE)
        from dqhash.tools.bench import tables

        return tables.main(args.pairs, args.tables, args.table_rows, args.json)
    if args.pending and args.hold_keys is None:
        return fail("bench", "--pending goes with --hold-keys", EXIT_USAGE)
    if args.hold_keys is not None:
        if args.hold_keys < 5 * 1000 or args.pairs < 1000:
            return fail("bench", "--hold-keys must be at least 5000, and --pairs at least 1000", EXIT_USAGE)
        from dqhash.tools.bench import held

        return held.main(args.hold_keys, args.pairs, args.json, pending=args.pending)
    if args.snapshot_rows is not None:
        if args.snapshot_rows < 1000:
            return fail("bench", "--snapshot-rows must be at least 1000", EXIT_USAGE)
        from dqhash.tools.bench import snapshot

        return snapshot.main(args.snapshot_rows, args.workers, args.json, args.chunks_per_range)
    if args.pairs < 1000:
        return fail("bench", "--pairs must be at least 1000", EXIT_USAGE)
    from dqhash.tools.bench import pipeline

    return pipeline.main(args.pairs, args.json, args.workers)


def run_domain(args: argparse.Namespace) -> int:
    if args.records is not None and args.records < 100:
        return fail("bench-domain", "--records must be at least 100", EXIT_USAGE)
    if args.instructions:
        from dqhash.tools.bench import instructions

        try:
            return instructions.main(args.records or 5_000, args.json)
        except instructions.ValgrindMissing as exc:
            return fail("bench-domain", str(exc), EXIT_USAGE)
    from dqhash.tools.bench import domain  # imported on use: it builds large sample data

    return domain.main(args.records or 100_000, args.json)
