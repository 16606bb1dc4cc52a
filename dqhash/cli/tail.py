"""``dqhash tail audit|dlq|repair|metrics``: an output topic as JSON lines, with ``--follow``, ``--pk``, ``--status``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from dqhash.cli.common import EXIT_OK, EXIT_USAGE, KAFKA, command, fail, load_settings, period_seconds
from dqhash.ops.tail import TOPICS, line

READS = (*KAFKA, "DQHASH_AUDIT_TOPIC", "DQHASH_DLQ_TOPIC", "DQHASH_REPAIR_TOPIC", "DQHASH_METRICS_TOPIC")


def add(commands: Any) -> None:
    tail = command(
        commands,
        "tail",
        "print an output topic's records as JSON lines (audit, dlq, repair, metrics)",
        READS,
        description="Reads the audit, dead-letter, repair or metrics topic from --since up to its end (or on, with "
        "--follow) and prints one JSON object per record, with its _partition and _offset. --pk keeps one key's "
        "records; --status keeps one status (for dlq: one reason, e.g. INVALID_JSON).",
    )
    tail.add_argument("kind", choices=sorted(TOPICS), help="which output topic")
    tail.add_argument("--since", default="1h", help="from how long ago: 90m, 24h, 7d ... (default 1h)")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new records until Ctrl-C")
    tail.add_argument("--pk", help="only this primary key's records")
    tail.add_argument("--status", help="only this status (dlq: this reason)")
    tail.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dqhash.core.timeutil import now_ms

    period = period_seconds(args.since, "tail")
    settings = load_settings("tail") if period is not None else None
    if period is None or settings is None:
        return EXIT_USAGE
    topic = getattr(settings, TOPICS[args.kind])
    since = now_ms() - period * 1000
    try:
        asyncio.run(_print(settings, args, topic, since))
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        return fail("tail", f"cannot read {topic} ({type(exc).__name__}: {exc}); is DQHASH_BROKER right?")
    return EXIT_OK


async def _print(settings: Any, args: argparse.Namespace, topic: str, since: int) -> None:
    from dqhash.kafka.topic_reader import follow_records, read_records

    def show(record: Any) -> None:
        doc = line(args.kind, *record[:2], *record[3:], pk=args.pk, status=args.status)
        if doc is not None:
            sys.stdout.write(orjson.dumps(doc).decode() + "\n")

    if not args.follow:
        for record in sorted((await read_records(settings, topic, since)).records, key=lambda r: r.timestamp):
            show(record)
        return
    async for record in follow_records(settings, topic, since):
        show(record)
        sys.stdout.flush()
