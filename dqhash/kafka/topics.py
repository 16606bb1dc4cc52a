"""Every topic dqhash uses, with partitions and configs: ``dqhash topics create`` and the worker's start-up check.

Inputs, internal topics and table changelogs share one partition count so a PK's records, state and ticks meet
in the same partition number; compacted topics must stay compacted (the snapshots, triage and changelog
topics are read whole as the newest value per key). Both are verified before anything is created, by
``dqhash topics create`` and by a worker before it starts, with the same message.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from dqhash.kafka.security import connect_args
from dqhash.settings import Settings

log = logging.getLogger(__name__)

TABLES = ("pairs",)
COMPACT = {"cleanup.policy": "compact"}


class TopicSpec(NamedTuple):
    name: str
    partitions: int
    configs: dict[str, str]
    role: str


def topic_plan(settings: Settings) -> list[TopicSpec]:
    n = settings.partitions
    week = str(7 * 24 * 3600 * 1000)
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
        TopicSpec(settings.snapshot_topic, 1, COMPACT, "output: snapshot progress and reconciliation per partition"),
        TopicSpec(settings.triage_topic, 1, COMPACT, "state: acknowledged and resolved mismatches, by audit id"),
    ]
    plan += [TopicSpec(f"{settings.app_id}-{t}-changelog", n, COMPACT, f"table changelog: {t}") for t in TABLES]
    return plan


class TopicMismatch(RuntimeError):
    """An existing topic that breaks co-partitioning or the compaction dqhash relies on."""


def mismatches(plan: list[TopicSpec], counts: Mapping[str, int], policies: Mapping[str, str | None]) -> list[str]:
    """What is wrong with the existing topics (``counts``: partitions of each; ``policies``: its cleanup.policy,
    None where the broker did not say); topics not in ``counts`` do not exist yet and are not checked."""
    wrong = []
    for spec in plan:
        count = counts.get(spec.name)
        if count is None:
            continue
        if count != spec.partitions:
            wrong.append(f"{spec.name} has {count} partitions, needs {spec.partitions}")
        policy = policies.get(spec.name)
        wanted = spec.configs.get("cleanup.policy")
        if wanted == "compact" and policy is not None and "compact" not in policy.split(","):
            wrong.append(f"{spec.name} has cleanup.policy={policy}, needs compact")
    return wrong


def mismatch_error(wrong: list[str]) -> TopicMismatch:
    return TopicMismatch(
        "topics do not match dqhash's plan; set DQHASH_PARTITIONS to the input topics' partition count (or "
        "recreate the topics), and keep compacted topics compacted: " + "; ".join(wrong)
    )


async def create_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Verify what exists, then create what is missing; returns the names created. Nothing is created when an
    existing topic is wrong (``TopicMismatch``)."""
    admin = await _admin(settings, timeout_s)
    try:
        plan = topic_plan(settings)
        wrong = await _check(admin, plan)
        if wrong:
            raise mismatch_error(wrong)
        existing = set(await admin.list_topics())
        created = []
        for spec in (spec for spec in plan if spec.name not in existing):
            try:
                await admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, settings.replication_factor, topic_configs=spec.configs)]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:  # another replica created it meanwhile
                pass
        wrong = await _check(admin, plan)  # a replica that raced us may have created one differently
        if wrong:
            raise mismatch_error(wrong)
        return created
    finally:
        await admin.close()


async def verify_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """What is wrong with the existing topics, without creating any (a worker's start-up check)."""
    admin = await _admin(settings, timeout_s)
    try:
        return await _check(admin, topic_plan(settings))
    finally:
        await admin.close()


async def _admin(settings: Settings, timeout_s: float) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(**connect_args(settings), request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
    except BaseException:
        await admin.close()
        raise
    return admin


async def _check(admin: AIOKafkaAdminClient, plan: list[TopicSpec]) -> list[str]:
    existing = set(await admin.list_topics())
    names = [spec.name for spec in plan if spec.name in existing]
    if not names:
        return []
    described = await admin.describe_topics(names)
    counts = {d["topic"]: len(d["partitions"]) for d in described if d.get("partitions")}
    compacted = [spec.name for spec in plan if spec.name in counts and spec.configs.get("cleanup.policy")]
    return mismatches(plan, counts, await _cleanup_policies(admin, compacted))


async def _cleanup_policies(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, str | None]:
    """Each topic's cleanup.policy, as the broker describes it; {} where the broker cannot describe configs."""
    if not names:
        return {}
    # every config: the embedded broker drops the connection when asked for named ones
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    try:
        responses = await admin.describe_configs(resources)
    except Exception as exc:  # not every broker serves DescribeConfigs: the partition check still holds
        log.debug("the broker did not describe topic configs (%s): compaction not checked", exc)
        return {}
    return _policies_of(responses)


def _policies_of(responses: list[Any]) -> dict[str, str | None]:
    policies: dict[str, str | None] = {}
    for response in responses:
        for resource in response.resources:
            error_code, name, entries = resource[0], resource[3], resource[4]
            if error_code:
                continue
            for entry in entries:
                if entry[0] == "cleanup.policy":
                    policies[name] = entry[1]
    return policies


def topics_matching(settings: Settings, pattern: str, timeout_s: float = 30.0) -> list[str]:
    """The broker's topics whose whole name matches ``pattern``, read once, now.

    Faust cannot subscribe by pattern, so a pattern is resolved to names when a worker starts: a topic created
    later is read after the next restart. It runs on a thread of its own, so the caller's event loop (Faust's,
    about to start) is left alone.
    """

    async def names() -> list[str]:
        admin = await _admin(settings, timeout_s)
        try:
            return list(await admin.list_topics())
        finally:
            await admin.close()

    compiled = re.compile(pattern)
    with ThreadPoolExecutor(1) as pool:
        found = pool.submit(asyncio.run, names()).result(timeout_s + 5)
    return sorted(name for name in found if compiled.fullmatch(name))


async def create_source_topics(settings: Settings, names: list[str], timeout_s: float = 30.0) -> None:
    """Topics another system owns, of one partition each, as a Debezium connector makes its change topics (the
    demo plays the connector)."""
    admin = await _admin(settings, timeout_s)
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, 1, settings.replication_factor) for name in names if name not in existing]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()


def partition_counts(settings: Settings, topics: list[str], timeout_s: float = 30.0) -> dict[str, int]:
    """How many partitions each of ``topics`` has, read once, now, on a thread of its own (as ``topics_matching``)."""

    async def counts() -> dict[str, int]:
        admin = await _admin(settings, timeout_s)
        try:
            described = await admin.describe_topics(topics)
        finally:
            await admin.close()
        return {d["topic"]: len(d.get("partitions") or ()) for d in described if d.get("topic") in topics}

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, counts()).result(timeout_s + 5)


async def partition_count(settings: Settings, topic: str, timeout_s: float = 30.0) -> int:
    """How many partitions the broker says ``topic`` has (0: no such topic)."""
    admin = await _admin(settings, timeout_s)
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return max((len(d.get("partitions") or ()) for d in described if d.get("topic") == topic), default=0)
