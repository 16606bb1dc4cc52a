"""The reconciler's agents: one per input topic, one for re-keyed records, one for ticks.

Each is "a batch of records → Reconciler.process → the checkpoint's commit", with ``concurrency=1``
(faust-streaming #606: higher concurrency can commit past an unprocessed message). A batch is whatever the
agent's stream has buffered (see :meth:`ReconcilerAgents.consume`). What makes its results exact (ordering,
lease, changelog, acknowledgement) is the checkpoint's (``dqhash.delivery.checkpoint``, docs/delivery.md).
``Reconciler.process`` guards each record (an unexpected error dead-letters that record, reason
PROCESSING_ERROR); if the batch's table writes fail, every record of the batch is dead-lettered rather
than acknowledged unprocessed, because an agent that raises is restarted and may skip or stall (#175, #315).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import faust
from mode.utils.aiter import aiter

from dqhash.core.records import SOURCE_CLOUD, SOURCE_ONPREM, SOURCE_REKEY, SOURCE_TICK, Input, Out
from dqhash.core.ticks import encode_tick
from dqhash.core.timeutil import now_ms
from dqhash.core.tuples import build
from dqhash.delivery.checkpoint import Batch, Checkpoint
from dqhash.engine.reconciler import Reconciler
from dqhash.internals.store import partition_reader, partition_scanner
from dqhash.internals.transport import Consumer as TappingConsumer
from dqhash.internals.transport import is_stale
from dqhash.kafka import schema_registry
from dqhash.kafka.taps import Chunk, Tap
from dqhash.ops.status import BatchStats

if TYPE_CHECKING:
    from dqhash.runtime import Runtime

log = logging.getLogger("dqhash.agents")


async def _nothing() -> None:
    """Nothing to acknowledge (a batch a test or a benchmark hands in directly)."""


def register(runtime: Runtime) -> ReconcilerAgents:
    return ReconcilerAgents(runtime)


class ReconcilerAgents:
    def __init__(self, runtime: Runtime) -> None:
        app, settings, outputs = runtime.app, runtime.settings, runtime.outputs
        self.app, self.settings, self.outputs, self.metrics = app, settings, outputs, runtime.metrics
        self.pairs = pairs = runtime.parts["pairs"]
        #: the delivery guarantee: ordering, lease, changelog, acknowledgement (``dqhash.delivery.checkpoint``)
        self.checkpoint = Checkpoint(app, pairs, settings, outputs.produce)
        outputs.declared.add(self.checkpoint.changelog)  # declared by Faust with the table
        outputs.sender.on_delivered[self.checkpoint.changelog] = self.checkpoint.on_changelog_delivered
        self.reconciler = Reconciler(
            settings,
            pairs,
            runtime.metrics,
            partition_scanner(settings.partitions),
            horizon=self.sweep_horizon,
            read=partition_reader(pairs),
            write=self.checkpoint.write,
        )
        #: decodes Confluent wire-format inputs (DQHASH_SCHEMA_REGISTRY_URL), None when not configured
        self.registry = schema_registry.from_settings(settings)
        #: per input topic: its tap (the agent's buffer of fetched records) and the batches processed from it,
        #: for the lag and backpressure report (``agents.status``)
        self.taps: dict[str, Tap] = {}
        self.batch_stats: dict[str, BatchStats] = {}

        self.onprem_topic = outputs.copartitioned_topic(settings.onprem_topic, internal=False)
        self.cloud_topic = outputs.copartitioned_topic(settings.cloud_topic, internal=False)
        self.rekey_topic = outputs.copartitioned_topic(settings.rekey_topic, internal=True)
        self.tick_topic = outputs.copartitioned_topic(settings.tick_topic, internal=True)

        def agent(topic: Any, source: int, name: str, doc: str) -> Any:
            async def consume(stream: Any) -> None:
                await self.consume(stream, source)

            consume.__doc__ = doc
            return app.agent(topic, name=f"{__name__}.{name}", concurrency=1)(consume)

        self.onprem_events = agent(self.onprem_topic, SOURCE_ONPREM, "onprem_events", "Topic-1: on-prem change events.")
        self.cloud_hashes = agent(self.cloud_topic, SOURCE_CLOUD, "cloud_hashes", "Topic-2: cloud hashes.")
        self.rekeyed = agent(
            self.rekey_topic,
            SOURCE_REKEY,
            "rekeyed",
            "Records of either side whose source partition was not their PK's.",
        )
        self.ticks = agent(
            self.tick_topic,
            SOURCE_TICK,
            "ticks",
            "Per-partition ticks: deadline sweep, expiry, window close — table writes inside the stream.",
        )
        app.timer(interval=settings.tick_seconds, name=f"{__name__}.send_ticks")(self.send_ticks)
        pairs.on_recover(self.rebuild_index)
        app.on_partitions_assigned.connect(self.on_assigned)
        app.on_partitions_revoked.connect(self.on_revoked)
        app.on_before_shutdown.connect(self.flush_metrics)

    def sweep_horizon(self, partition: int, now: int) -> int:
        """Deadlines of a partition are swept only as far as all its inputs have been read: Topic-2 (a cloud hash
        still unread is not a missing row) and Topic-1 (an on-prem version still unread may be what the cloud
        shows: docs/classification.md, "No verdict ahead of the on-prem stream"), and the re-key topic.

        (Reads requested from dqhash's own cloud reader are waited for per pair instead: classify row 22.)
        """
        settings = self.settings
        return min(
            self.outputs.watermark(topic, partition, now)
            for topic in (settings.onprem_topic, settings.cloud_topic, settings.rekey_topic)
        )

    async def consume(self, stream: Any, source: int) -> None:
        """Process what is buffered as one batch: one record when the agent keeps up (no added latency),
        up to DQHASH_BATCH_MAX when it is behind, which is when batching pays.

        On dqhash's transport the records come from a tap (``dqhash.kafka.taps``), whole fetched batches past
        Faust's per-record path; elsewhere (Faust's test tooling, another transport) from the stream, acknowledged
        by hand: Faust commits only acknowledged offsets.
        """
        tap = self._tap(stream)
        if tap is not None:
            await self.consume_tap(tap, source, self.app.consumer)
            return
        manual = stream.noack()
        queue_empty = manual.channel.queue.empty
        batch_max = self.batch_max(source)
        events: list = []
        async for event in manual.events():
            events.append(event)
            if len(events) < batch_max and not queue_empty():
                continue
            inputs = [
                self.input_of(source, done.message) for done in events if not is_stale(self.app.consumer, done.message)
            ]  # sought since: it comes again, in order

            async def acknowledge(done: list = events) -> None:
                for event in done:
                    await manual.ack(event)

            await self.process(inputs, source, acknowledge)
            events = []

    def _tap(self, stream: Any) -> Tap | None:
        """A tap for the stream's topic, if the consumer hands records to taps; subscribes the topic."""
        channel = stream.channel
        consumer = self.app.consumer
        if not isinstance(channel, faust.TopicT) or not isinstance(consumer, TappingConsumer):
            return None
        tap = Tap(maxsize=max(self.app.conf.stream_buffer_maxsize, 2 * self.settings.batch_max))
        for name in channel.topics:
            consumer.taps[name] = tap
            self.taps[name] = tap
            self.batch_stats[name] = BatchStats()
        aiter(channel)  # adds the topic to Faust's conductor: subscribed, assigned, its records come to the tap
        return tap

    def batch_max(self, source: int) -> int:
        """Most records of one batch. A tick is a batch of its own: each sweeps up to ``SWEEP_BATCH`` due deadlines
        of its partition, and a batch holds every verdict, state and output it makes until its end. An agent behind
        on the tick topic (at the end of a backlog, when every deadline held back falls due) reads several ticks of
        a partition at once, and as one batch they would hold all their sweeps together."""
        return 1 if source == SOURCE_TICK else self.settings.batch_max

    async def consume_tap(self, tap: Tap, source: int, consumer: Any) -> None:
        """A batch is what the tap holds: whole fetches, of the chunks still current (the checkpoint's step 1)."""
        batch_max = self.batch_max(source)
        while True:
            chunks = await self.checkpoint.admit(await tap.get(batch_max), consumer)
            if not chunks:
                continue
            inputs = self._inputs_of(chunks, source)
            stats = self.batch_stats.get(chunks[0].tp.topic)  # a tap serves one topic
            if stats is not None:
                stats.saw(len(inputs), batch_max, tap.size)

            async def acknowledge(done: list[Chunk] = chunks) -> None:
                for chunk in done:
                    consumer.ack_chunk(chunk)

            await self.process(inputs, source, acknowledge)

    def _inputs_of(self, chunks: list[Chunk], source: int) -> list[Input]:
        monitor = self.app.monitor
        inputs: list[Input] = []
        for chunk in chunks:
            # aiokafka ``ConsumerRecord``s: timestamps in ms (``build``: past Input's Python-level constructor)
            inputs.extend(
                [
                    build(Input, (source, r.topic, r.partition, r.offset, r.key, r.value, r.headers, r.timestamp))
                    for r in chunk.records
                ]
            )
            last = chunk.records[-1]
            self.outputs.record_progress(last.topic, last.partition, last.offset, last.timestamp)
            monitor.stream_inbound_time[chunk.tp] = time.monotonic()  # Faust's "stream idle" check
        return inputs

    def input_of(self, source: int, message: Any) -> Input:
        """A Faust ``Message`` (timestamps in seconds) as the reconciler's input."""
        timestamp_ms = int(message.timestamp * 1000) if message.timestamp else None
        self.outputs.record_progress(message.topic, message.partition, message.offset, timestamp_ms)
        return Input(
            source,
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            message.headers,
            timestamp_ms,
        )

    async def process(
        self, inputs: list[Input], source: int, acknowledge: Callable[[], Awaitable[None]] = _nothing
    ) -> None:
        """Steps 2 and 3 (apply, write: the engine), then the checkpoint's commit (steps 4 to 9)."""
        generation = self.checkpoint.generation()
        if self.registry is not None:
            inputs = await self.registry.decode(inputs)
        try:
            outs = self.reconciler.process(inputs)
        except Exception as exc:  # the batch's table writes failed: dead-letter it, never ack it unprocessed
            log.exception("could not write the state of a batch of %d records; dead-lettering them", len(inputs))
            outs = self._dead_letter_all(exc, inputs)
        await self.checkpoint.commit(Batch(outs, generation, len(inputs), acknowledge))

    def _dead_letter_all(self, exc: Exception, inputs: list[Input]) -> list[Out]:
        return [
            self.reconciler.dead_letter_error(exc, i.topic, i.partition, i.offset, i.key, i.value, i.headers)
            for i in inputs
            if i.source != SOURCE_TICK
        ]

    async def send_ticks(self) -> None:
        """Timers cannot write tables (faust #497), so they send one tick per owned partition instead."""
        if not self.checkpoint.owns():
            return
        now = now_ms()
        for tp in self.app.assignor.assigned_actives():
            if tp.topic == self.settings.tick_topic:
                value = encode_tick(now, min(now, self.sweep_horizon(tp.partition, now)))
                await self.tick_topic.send(value=value, partition=tp.partition)

    async def rebuild_index(self) -> None:
        """Once the tables are recovered: claim an epoch for each owned partition (its marker is the first
        record this owner writes to the changelog: ``core.epochs``), then rebuild the deadline index, which is
        derived state."""
        partitions = sorted(self._changelog_actives())
        await self.checkpoint.claim(partitions)
        await self.outputs.produce(self.reconciler.rebuild(partitions))

    def _changelog_actives(self) -> set[int]:
        changelog = self.checkpoint.changelog
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == changelog}

    async def on_assigned(self, app: Any, assigned: Any, **kwargs: Any) -> None:
        self.checkpoint.assigned(app.consumer, app.consumer_generation_id, self._changelog_actives())

    async def on_revoked(self, app: Any, revoked: Any, **kwargs: Any) -> None:
        """Drop derived state of partitions that moved away (the new owner rebuilds it); the checkpoint settles
        what was applied and not yet published."""
        for partition in {tp.partition for tp in revoked if tp.topic == self.settings.tick_topic}:
            self.reconciler.forget(partition)
        await self.checkpoint.revoke()

    async def flush_metrics(self, app: Any, **kwargs: Any) -> None:
        self.metrics.close()
        if self.registry is not None:
            await self.registry.close()
