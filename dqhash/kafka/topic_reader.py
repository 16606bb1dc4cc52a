"""Reading a topic from a point in time to the end offsets taken at the start: for reports, not for streaming."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition

from dqhash.kafka.security import connect_args
from dqhash.kafka.topics import partition_count, topic_plan
from dqhash.settings import Settings

log = logging.getLogger(__name__)


class TopicRecord(NamedTuple):
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class TopicRead(NamedTuple):
    records: list[TopicRecord]
    partitions: list[int]  # every partition of the topic, read or empty


async def read_records(
    settings: Settings, topic: str, since_ms: int | None = None, timeout_s: float = 30.0
) -> TopicRead:
    """Every record of ``topic`` with a timestamp at or after ``since_ms`` (all when None), up to the end offsets
    taken at the start. Where the broker cannot answer offsets-for-times, the partition is read from its
    beginning and filtered by timestamp. Raises ``TimeoutError`` if the end is not reached in ``timeout_s``."""
    consumer = AIOKafkaConsumer(
        **connect_args(settings), enable_auto_commit=False, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        partitions = await _partitions(settings, consumer, topic)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await _seek_to_time(consumer, tps, since_ms)
        remaining = {tp for tp in tps if ends[tp] > 0 and await consumer.position(tp) < ends[tp]}
        records: list[TopicRecord] = []
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=int(timeout_s * 1000))
            if not batches:
                raise TimeoutError(f"{topic} was not read to its end within {timeout_s:.0f}s")
            for tp, batch in batches.items():
                records.extend(
                    TopicRecord(tp.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers or ()))
                    for r in batch
                    if since_ms is None or r.timestamp >= since_ms
                )
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return TopicRead(records, partitions)
    finally:
        await consumer.stop()


#: seconds between two looks for partitions a followed topic gained (or a topic created after the follower started)
PARTITION_CHECK_S = 10.0


async def follow_records(settings: Settings, topic: str, since_ms: int | None) -> AsyncIterator[TopicRecord]:
    """Every record of ``topic`` from ``since_ms`` on, then each new one as it comes, until the caller stops.

    A topic that does not exist yet, or gains partitions, is looked at again every ``PARTITION_CHECK_S``: the
    partitions found are read from ``since_ms`` too."""
    consumer = AIOKafkaConsumer(
        **connect_args(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        metadata_max_age_ms=30_000,
    )
    await consumer.start()
    try:
        assigned: list[Any] = []
        checked = -PARTITION_CHECK_S
        loop = asyncio.get_running_loop()
        while True:
            if loop.time() - checked >= PARTITION_CHECK_S:
                checked = loop.time()
                assigned = await _assign_new(settings, consumer, topic, assigned, since_ms)
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, batch in sorted(batches.items(), key=lambda item: item[0].partition):
                for r in batch:
                    if since_ms is None or r.timestamp >= since_ms:
                        yield TopicRecord(tp.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers or ()))
    finally:
        await consumer.stop()


async def _assign_new(
    settings: Settings, consumer: Any, topic: str, assigned: list[Any], since_ms: int | None
) -> list[Any]:
    """Every partition the topic has as the consumer's metadata knows it (refreshed every 30 s for an assigned
    topic; the planned count before it exists), the ones already read kept at their positions, new ones from
    ``since_ms``."""
    tps = [TopicPartition(topic, p) for p in await _partitions(settings, consumer, topic)]
    if len(tps) == len(assigned):
        return assigned
    positions = {tp: await consumer.position(tp) for tp in assigned}
    consumer.assign(tps)
    for tp, position in positions.items():
        consumer.seek(tp, position)
    await _seek_to_time(consumer, [tp for tp in tps if tp not in positions], since_ms)
    return tps


async def follow(settings: Settings, topic: str, since_ms: int | None, apply: Callable[[TopicRecord], None]) -> None:
    """Apply every record of ``topic`` from ``since_ms`` on (None: its beginning), forever. After an error (the
    broker away) it reconnects and goes on from the newest timestamp it applied: ``apply`` must take a record
    twice without harm."""
    while True:
        try:
            async for record in follow_records(settings, topic, since_ms):
                apply(record)
                since_ms = record.timestamp if since_ms is None else max(since_ms, record.timestamp)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the views keep what they have meanwhile
            log.warning("following %s failed (%s: %s); retrying in 5 s", topic, type(exc).__name__, exc)
            await asyncio.sleep(5)


async def _partitions(settings: Settings, consumer: Any, topic: str) -> list[int]:
    """The topic's partitions: as the consumer's metadata knows them, else as the broker describes the topic (one
    created a moment ago), else as many as ``dqhash topics create`` will give it."""
    found = consumer.partitions_for_topic(topic)
    if found:
        return sorted(found)
    described = await partition_count(settings, topic)  # a topic the consumer has not seen yet: ask the broker
    if described:
        return list(range(described))
    planned = {spec.name: spec.partitions for spec in topic_plan(settings)}
    return list(range(planned.get(topic, 1)))


async def _seek_to_time(consumer: Any, tps: list[Any], since_ms: int | None) -> None:
    """Each partition's first record at or after ``since_ms``; from the beginning where the broker cannot
    answer offsets-for-times (the records are then filtered by timestamp)."""
    starts: dict[Any, Any] = {}
    if since_ms is not None:
        try:
            starts = await consumer.offsets_for_times({tp: since_ms for tp in tps})
        except Exception:  # not served by every broker: read from the beginning instead
            starts = {}
    for tp in tps:
        start = starts.get(tp)
        if start is not None:
            consumer.seek(tp, start.offset)
        else:
            await consumer.seek_to_beginning(tp)
