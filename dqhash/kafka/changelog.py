"""Reading a stretch of a changelog partition directly: what landed between a recovery's end and a marker.

A new owner recovers a partition up to the end offset it saw, then writes its epoch marker
(``core.epochs``). A fenced owner's records delivered in between sit before the marker, so every later
replay applies them; the new owner reads that stretch and applies it too, so its state and any replay
agree. The stretch is empty unless a paused worker thawed at that moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP


class ReplayedMessage(NamedTuple):
    """The fields of a Faust message that a store's ``apply_changelog_batch`` and the epoch fence read."""

    tp: TP
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any
    timestamp: float | None


class ReplayedEvent(NamedTuple):
    """What ``apply_changelog_batch`` reads of Faust's ``Event``: Faust's memory store reads the event's key and
    value, its RocksDB store the message's. The tables are raw, so both are the record's bytes."""

    key: bytes | None
    value: bytes | None
    headers: Any
    message: ReplayedMessage


def replayed(tp: TP, record: Any) -> ReplayedEvent:
    """An aiokafka ``ConsumerRecord`` of a changelog partition, as the event Faust's conductor would have made."""
    timestamp = record.timestamp / 1000.0 if record.timestamp is not None else None
    message = ReplayedMessage(
        tp, tp.topic, tp.partition, record.offset, record.key, record.value, record.headers, timestamp
    )
    return ReplayedEvent(record.key, record.value, record.headers, message)


async def read_range(
    kafka: Mapping[str, Any], topic: str, partition: int, start: int, end: int, timeout_s: float = 30.0
) -> list[ReplayedEvent]:
    """The records at offsets ``start`` up to (not including) ``end`` of one partition, as replay events."""
    consumer = AIOKafkaConsumer(**kafka, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        events: list[ReplayedEvent] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while await consumer.position(tp) < end:
            if loop.time() > deadline:
                raise TimeoutError(
                    f"could not read {topic}[{partition}] offsets {start} to {end - 1} within {timeout_s:.0f}s"
                )
            for record in (await consumer.getmany(tp, timeout_ms=200)).get(tp, []):
                if record.offset < end:
                    events.append(replayed(TP(topic, partition), record))
        return events
    finally:
        await consumer.stop()
