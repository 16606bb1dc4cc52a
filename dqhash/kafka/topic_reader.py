"""Reading a topic from a point in time to the end offsets taken at the start: for reports, not for streaming."""

from __future__ import annotations

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
        # as many partitions as ``dqhash topics create`` gives the topic (the consumer's metadata may not know it yet)
        planned = {spec.name: spec.partitions for spec in topic_plan(settings)}
        found = consumer.partitions_for_topic(topic)
        partitions = sorted(found) if found else list(range(planned.get(topic, 1)))
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
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
        records: list[TopicRecord] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=int(timeout_s * 1000))
            if not batches:
                raise TimeoutError(f"{topic} was not read to its end within {timeout_s:.0f}s")
            for tp, batch in batches.items():
                for record in batch:
                    if since_ms is None or record.timestamp >= since_ms:
                        records.append(
                            TopicRecord(tp.partition, record.offset, record.timestamp, record.key, record.value)
                        )
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return TopicRead(records, partitions)
    finally:
        await consumer.stop()
