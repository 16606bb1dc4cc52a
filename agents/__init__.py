"""Faust agents, by role: ``reconciler`` (inputs, re-keying, ticks), ``cloud_reader`` (cloud lookups),
``cassandra_audit`` (audit rows to Cassandra) and ``web`` (views). Each module's ``register(runtime)``
defines its agents on the runtime's app (``dqhash.runtime``); importing a module registers nothing.

Shared here: :class:`Outputs`, producing what the domain returns. Records already carry their encoded key
and value, so every output topic is raw bytes, and they are produced in record batches per
topic-partition (``dqhash.kafka.batch_sender``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from faust.types import TP

from dqhash.core.records import Out
from dqhash.core.watermark import input_watermark
from dqhash.internals.clients import committed_offset, highwater_fetched_at, started_producer
from dqhash.kafka.batch_sender import BatchSender
from dqhash.settings import Settings


class Outputs:
    """The topics a worker reads and writes, and producing to them a batch at a time."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self._topics: dict[str, Any] = {}
        #: (topic, partition) → (offset, Kafka timestamp ms) of the newest record an agent of this worker processed.
        self.progress: dict[tuple[str, int], tuple[int, int]] = {}
        #: Faust's own producer, used a batch at a time
        self.sender = BatchSender(lambda: started_producer(app))
        #: topics that exist (declared at start-up, or by :meth:`produce` once, as ``Topic.send`` would)
        self.declared: set[str] = set()

    def record_progress(self, topic: str, partition: int, offset: int, timestamp_ms: int | None) -> None:
        self.progress[topic, partition] = (offset, timestamp_ms or 0)

    def watermark(self, topic: str, partition: int, now: int) -> int:
        """See :func:`dqhash.core.watermark.input_watermark`."""
        tp = TP(topic, partition)
        consumer = self.app.consumer
        if consumer is None:
            return now
        fetched_at = highwater_fetched_at(consumer, tp)  # first: an older time with a newer highwater errs safe
        return input_watermark(
            now,
            consumer.highwater(tp),
            fetched_at,
            committed_offset(consumer, tp),
            self.progress.get((topic, partition)),
        )

    def copartitioned_topic(self, name: str, internal: bool) -> Any:
        """A raw-bytes topic with DQHASH_PARTITIONS partitions, consumed by an agent and produced to alike."""
        topic = self._topics[name] = self.app.topic(
            name, partitions=self.settings.partitions, key_serializer="raw", value_serializer="raw", internal=internal
        )
        return topic

    def output_topic(self, name: str) -> Any:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = self.app.topic(
                name, key_serializer="raw", value_serializer="raw", internal=False
            )
        return topic

    async def produce(self, outs: Iterable[Out]) -> None:
        outs = outs if isinstance(outs, list) else list(outs)
        topics = {out.topic for out in outs}
        for name in topics - self.declared:
            await self.output_topic(name).maybe_declare()
            self.declared.add(name)
        await self.sender.send(outs)
