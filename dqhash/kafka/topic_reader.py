"""Reading a topic from a point in time to the end offsets taken at the start: for reports, not for streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition

from dqhash.kafka.security import connect_args
from dqhash.kafka.topics import topic_plan
from dqhash.settings import Settings


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
        partitions = _partitions(settings, consumer, topic)
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


async def follow_records(settings: Settings, topic: str, since_ms: int | None) -> AsyncIterator[TopicRecord]:
    """Every record of ``topic`` from ``since_ms`` on, then each new one as it comes, until the caller stops."""
    consumer = AIOKafkaConsumer(
        **connect_args(settings), enable_auto_commit=False, auto_offset_reset="latest", group_id=None
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in _partitions(settings, consumer, topic)]
        consumer.assign(tps)
        await _seek_to_time(consumer, tps, since_ms)
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, batch in sorted(batches.items(), key=lambda item: item[0].partition):
                for r in batch:
                    if since_ms is None or r.timestamp >= since_ms:
                        yield TopicRecord(tp.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers or ()))
    finally:
        await consumer.stop()


def _partitions(settings: Settings, consumer: Any, topic: str) -> list[int]:
    """The topic's partitions: as the consumer's metadata knows them, else as many as ``dqhash topics create``
    gives the topic (the metadata may not know it yet)."""
    found = consumer.partitions_for_topic(topic)
    if found:
        return sorted(found)
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
