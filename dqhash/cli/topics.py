"""``dqhash topics create``: every topic with co-partitioned counts and configs; existing ones verified."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from dqhash.cli.common import EXIT_OK, EXIT_USAGE, KAFKA, command, fail, load_settings

READS = (*KAFKA, "DQHASH_APP_ID", "DQHASH_*_TOPIC", "DQHASH_PARTITIONS", "DQHASH_REPLICATION_FACTOR")


def add(commands: Any) -> None:
    topics = command(commands, "topics", "manage dqhash's Kafka topics")
    actions = topics.add_subparsers(title="topics commands", metavar="ACTION")
    create = command(
        actions, "create", "create every topic with co-partitioned counts and configs; verify existing ones", READS
    )
    create.set_defaults(run=create_topics)


def create_topics(args: argparse.Namespace) -> int:
    from dqhash.kafka.topics import TopicMismatch, create_topics, topic_plan

    settings = load_settings("topics create")
    if settings is None:
        return EXIT_USAGE
    try:
        created = asyncio.run(create_topics(settings))
    except TopicMismatch as exc:
        return fail("topics create", str(exc), EXIT_USAGE)
    except Exception as exc:  # broker unreachable and the like
        return fail(
            "topics create",
            f"cannot reach the broker at {settings.broker} ({type(exc).__name__}: {exc}); is DQHASH_BROKER right?",
        )
    for spec in topic_plan(settings):
        state = "created" if spec.name in created else "exists"
        print(f"{state:8s} {spec.name:40s} partitions={spec.partitions} {spec.role}")
    return EXIT_OK
