"""Every topic dqhash uses, with partitions and configs: ``dqhash topics create``.

Inputs, internal topics and table changelogs share one partition count so a
PK's records, state and ticks meet in the same partition number.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from dqhash.kafka.security import connect_args
from dqhash.settings import Settings

log = logging.getLogger(__name__)

TABLES = ("pairs",)


class TopicSpec(NamedTuple):
    name: str
    partitions: int
    configs: dict[str, str]
    role: str


def topic_plan(settings: Settings) -> list[TopicSpec]:
    n = settings.partitions
    week = str(7 * 24 * 3600 * 1000)
    compact = {"cleanup.policy": "compact"}
    plan = [
        TopicSpec(settings.onprem_topic, n, {}, "input: on-prem change events"),
        TopicSpec(settings.cloud_topic, n, {}, "input: cloud hashes"),
        TopicSpec(
            settings.rekey_topic, n, {"retention.ms": week}, "internal: records re-keyed to their PK's partition"
        ),
        TopicSpec(settings.tick_topic, n, {"retention.ms": str(3600 * 1000)}, "internal: deadline ticks"),
        TopicSpec(settings.lookup_topic, n, {"retention.ms": week}, "internal: cloud rows to read (lookups, rechecks)"),
        TopicSpec(settings.repair_topic, n, {"retention.ms": week}, "output: confirmed problems for a resync job"),
        TopicSpec(settings.audit_topic, n, {"retention.ms": week}, "output: one record per classification"),
        TopicSpec(settings.metrics_topic, 1, {"retention.ms": week}, "output: per-window counts"),
        TopicSpec(settings.dlq_topic, 1, {"retention.ms": str(30 * 24 * 3600 * 1000)}, "output: dead letters"),
        TopicSpec(settings.snapshot_topic, 1, compact, "output: snapshot progress and reconciliation per partition"),
        TopicSpec(settings.triage_topic, 1, compact, "state: acknowledged and resolved mismatches, by audit id"),
    ]
    plan += [TopicSpec(f"{settings.app_id}-{t}-changelog", n, compact, f"table changelog: {t}") for t in TABLES]
    return plan


class TopicMismatch(RuntimeError):
    """An existing topic whose partition count breaks co-partitioning."""


async def create_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create what is missing; verify what exists. Returns the names created."""
    admin = AIOKafkaAdminClient(**connect_args(settings), request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        plan = topic_plan(settings)
        existing = set(await admin.list_topics())
        missing = [spec for spec in plan if spec.name not in existing]
        created = []
        for spec in missing:
            try:
                await admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, settings.replication_factor, topic_configs=spec.configs)]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:  # another replica created it meanwhile
                pass
        described = await admin.describe_topics([spec.name for spec in plan])
        counts = {d["topic"]: len(d["partitions"]) for d in described}
        wrong = [
            f"{spec.name} has {counts.get(spec.name)} partitions, needs {spec.partitions}"
            for spec in plan
            if counts.get(spec.name) != spec.partitions
        ]
        if wrong:
            raise TopicMismatch(
                "topics do not match DQHASH_PARTITIONS; set DQHASH_PARTITIONS to the input topics' partition count "
                "(or recreate the topics): " + "; ".join(wrong)
            )
        return created
    finally:
        await admin.close()
