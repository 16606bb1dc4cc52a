"""``dqhash repair signal``: the repair topic's open requests as Debezium incremental-snapshot signals."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from dqhash.cli.common import EXIT_OK, EXIT_USAGE, KAFKA, command, fail, load_settings, period_seconds

READS = (*KAFKA, "DQHASH_REPAIR_TOPIC", "DQHASH_CATALOG", "DQHASH_TABLE")


def add(commands: Any) -> None:
    repair = command(commands, "repair", "act on the repair topic's requests (docs/debezium.md)")
    actions = repair.add_subparsers(title="repair commands", metavar="ACTION")
    signal = command(
        actions,
        "signal",
        "ask a Debezium connector to re-read the rows that differ: execute-snapshot signals on its signal topic",
        READS,
        description="Reads the repair topic from --since, keeps the requests still open (a withdrawn one is "
        "dropped), and writes one incremental-snapshot signal per table and batch of keys to the connector's "
        "Kafka signal topic, keyed by its topic.prefix. Debezium re-reads those rows through the pipeline and dqhash "
        "verifies them like any change. Rows to delete in the cloud are listed, not signalled.",
    )
    signal.add_argument("--signal-topic", required=True, help="the connector's signal.kafka.topic")
    signal.add_argument("--topic-prefix", required=True, help="the connector's topic.prefix (the signal's key)")
    signal.add_argument("--since", default="24h", help="requests from how long ago: 90m, 24h, 7d ... (default 24h)")
    signal.add_argument("--keys-per-signal", type=int, default=500, help="keys selected by one signal (default 500)")
    signal.add_argument("--dry-run", action="store_true", help="print the signals, send nothing")
    signal.set_defaults(run=run_signal)


def run_signal(args: argparse.Namespace) -> int:
    from dqhash.core.signals import SignalError, open_requests, signal_records
    from dqhash.core.timeutil import now_ms
    from dqhash.kafka.security import connect_args
    from dqhash.kafka.topic_reader import read_records
    from dqhash.tools.runner import produce

    period = period_seconds(args.since, "repair signal")
    settings = load_settings("repair signal") if period is not None else None
    if period is None or settings is None:
        return EXIT_USAGE
    if not 1 <= args.keys_per_signal <= 100_000:
        return fail("repair signal", "--keys-per-signal must be between 1 and 100000", EXIT_USAGE)
    try:
        read = asyncio.run(read_records(settings, settings.repair_topic, now_ms() - period * 1000))
    except Exception as exc:
        return fail(
            "repair signal",
            f"cannot read {settings.repair_topic} ({type(exc).__name__}: {exc}); is DQHASH_BROKER right?",
        )
    requests = open_requests(orjson.loads(r.value) for r in read.records if r.value)
    try:
        records, notes = signal_records(args.topic_prefix, settings.catalog, requests, args.keys_per_signal)
    except SignalError as exc:
        return fail("repair signal", str(exc))
    for note in notes:
        print(f"dqhash repair signal: {note}", file=sys.stderr)
    if args.dry_run:
        for _, value in records:
            print(value.decode())
    else:
        try:
            asyncio.run(produce(connect_args(settings), args.signal_topic, records))
        except Exception as exc:
            return fail("repair signal", f"cannot write to {args.signal_topic} ({type(exc).__name__}: {exc})")
    keys = sum(len(keys) for actions in requests.values() for keys in [actions.get("resync", [])])
    verb = "would send" if args.dry_run else "sent"
    print(
        f"dqhash repair signal: {verb} {len(records)} signal(s) for {keys} key(s) to {args.signal_topic}",
        file=sys.stderr,
    )
    return EXIT_OK
