"""Producing a batch's records as Kafka record batches: one per topic-partition, not one send per record.

Faust's ``Topic.send`` and its changelog buffer cost a coroutine, futures and a
callback per record; the reconciler knows a whole batch of records at once, so
they are grouped by topic-partition and appended to aiokafka ``BatchBuilder``s
(``create_batch`` / ``send_batch``), with one delivery future per batch.
Partitions of keyed records are Kafka's default (murmur2 of the key), as the
per-record path chose them; unkeyed ones go round-robin.

The records are in the producer's accumulator when :meth:`BatchSender.send`
returns; Faust flushes the producer before it commits offsets, so a batch's
outputs are delivered before its input offsets are committed (at-least-once).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable

from dqhash.core.partitioning import key_partition
from dqhash.core.records import Out

log = logging.getLogger(__name__)

#: (partition, offset of the last record of a delivered batch) → None
OnDelivered = Callable[[int, int], None]


class BatchSender:
    def __init__(self, producer: Callable[[], object]) -> None:
        #: returns the started aiokafka producer (Faust's: ``dqhash.internals.clients.started_producer``)
        self._producer = producer
        self._partition_counts: dict[str, int] = {}
        self._round_robin = itertools.count()
        #: topic → called with (partition, last offset) when a batch of that topic is acknowledged
        self.on_delivered: dict[str, OnDelivered] = {}

    async def send(self, outs: Iterable[Out]) -> int:
        """Queue every record, grouped by topic-partition in arrival order; returns the batches queued."""
        producer = self._producer()
        groups: dict[tuple[str, int], list[Out]] = {}
        counts = self._partition_counts
        for out in outs:
            topic, key, partition = out.topic, out.key, out.partition
            if partition is None:
                count = counts.get(topic)
                if count is None:  # once per topic: awaited (a metadata request), not a coroutine per record
                    count = counts[topic] = len(await producer.partitions_for(topic))
                partition = next(self._round_robin) % count if key is None else key_partition(key, count)
            group = groups.get((topic, partition))
            if group is None:
                group = groups[topic, partition] = []
            group.append(out)
        batches = 0
        for (topic, partition), records in groups.items():
            batch, count = producer.create_batch(), 0
            for out in records:
                if _append(batch, out) is None:
                    await self._submit(producer, batch, topic, partition, count)
                    batches += 1
                    batch, count = producer.create_batch(), 0
                    _append(batch, out)  # an empty batch takes any record (the broker checks its size)
                count += 1
            await self._submit(producer, batch, topic, partition, count)
            batches += 1
        return batches

    async def _submit(self, producer, batch, topic: str, partition: int, count: int) -> None:
        delivered = await producer.send_batch(batch, topic, partition=partition)
        callback = self.on_delivered.get(topic)
        delivered.add_done_callback(lambda future: _report(future, callback, topic, partition, count))


def _append(batch, out: Out):
    return batch.append(timestamp=None, key=out.key, value=out.value, headers=out.headers or [])


def _report(future, callback: OnDelivered | None, topic: str, partition: int, count: int) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:  # aiokafka retried until its request timeout: the broker is unreachable or refusing
        log.error(
            "could not deliver %d records to %s[%d]: %r; check the broker (their input records are "
            "redelivered if their offsets were not committed)",
            count,
            topic,
            partition,
            error,
        )
    elif callback is not None:
        callback(partition, future.result().offset + count - 1)
