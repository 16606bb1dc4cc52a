"""The reconciler's agents: one per input topic, one for re-keyed records, one for ticks.

Each is "a batch of records → Reconciler.process → produce what it returns", with ``concurrency=1``
(faust-streaming #606: higher concurrency can commit past an unprocessed message). A batch is whatever the
agent's stream has buffered (see :meth:`ReconcilerAgents.consume`); its records are acknowledged by hand
once its outputs are queued, so Faust commits no offset of an unprocessed record: at-least-once, per
batch. ``Reconciler.process`` guards each record (an unexpected error dead-letters that record, reason
PROCESSING_ERROR); if the batch's table writes fail, every record of the batch is dead-lettered rather
than acknowledged unprocessed, because an agent that raises is restarted and may skip or stall (#175, #315).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import faust
from faust.types import TP
from mode.utils.aiter import aiter

from dqhash.core.epochs import EpochGate, epoch_header, epoch_key
from dqhash.core.records import SOURCE_CLOUD, SOURCE_ONPREM, SOURCE_REKEY, SOURCE_TICK, Input, Out
from dqhash.core.ticks import encode_tick
from dqhash.core.timeutil import now_ms
from dqhash.core.tuples import build
from dqhash.engine.reconciler import Reconciler
from dqhash.internals.clients import started_producer
from dqhash.internals.store import (
    batch_writer,
    fence_changelog_replay,
    partition_reader,
    partition_scanner,
    persist_offset,
    persists_offsets,
    stored_epoch,
    wipe_partition,
)
from dqhash.internals.transport import Consumer as TappingConsumer
from dqhash.internals.transport import is_stale
from dqhash.kafka import schema_registry
from dqhash.kafka.changelog import read_range
from dqhash.kafka.ownership import Ownership
from dqhash.kafka.security import connect_args
from dqhash.kafka.taps import Tap
from dqhash.ops.status import BatchStats

if TYPE_CHECKING:
    from dqhash.runtime import Runtime

log = logging.getLogger("dqhash.agents")


def register(runtime: Runtime) -> ReconcilerAgents:
    return ReconcilerAgents(runtime)


class ReconcilerAgents:
    def __init__(self, runtime: Runtime) -> None:
        app, settings, outputs = runtime.app, runtime.settings, runtime.outputs
        self.app, self.settings, self.outputs, self.metrics = app, settings, outputs, runtime.metrics
        self.pairs = pairs = runtime.parts["pairs"]
        #: the lease on the assigned partitions (``core.lease``) and the epochs claimed for them (``core.epochs``)
        self.ownership = Ownership(settings.session_timeout)
        self.epochs = EpochGate(stored_epoch(pairs))
        self._write = batch_writer(pairs, self.epochs)
        #: the changelog partitions this worker owns, as of the last assignment
        self._actives: set[int] = set()
        self.reconciler = Reconciler(
            settings,
            pairs,
            runtime.metrics,
            partition_scanner(settings.partitions),
            horizon=self.sweep_horizon,
            read=partition_reader(pairs),
            write=self._write,
        )
        #: produces a batch's outputs (replaced in tests)
        self.produce = outputs.produce
        #: decodes Confluent wire-format inputs (DQHASH_SCHEMA_REGISTRY_URL), None when not configured
        self.registry = schema_registry.from_settings(settings)
        #: per input topic: its tap (the agent's buffer of fetched records) and the batches processed from it,
        #: for the lag and backpressure report (``agents.status``)
        self.taps: dict[str, Tap] = {}
        self.batch_stats: dict[str, BatchStats] = {}
        self._in_order = InOrder(lambda outs: self.produce(outs))

        # The table's changelog is written by ``batch_writer`` through ``produce`` (declared by Faust with the table).
        changelog = pairs.changelog_topic.get_topic_name()
        outputs.declared.add(changelog)
        outputs.sender.on_delivered[changelog] = persist_offset(pairs, trusted=self.owns)
        fence_changelog_replay(pairs, self.epochs)

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

        Acknowledged by hand, after the batch's outputs are queued: Faust commits only acknowledged offsets.
        On dqhash's transport the records come from a tap (``dqhash.kafka.taps``), whole fetched batches past
        Faust's per-record path; elsewhere (Faust's test tooling, another transport) from the stream.
        """
        tap = self._tap(stream)
        if tap is not None:
            await self.consume_tap(tap, source, self.app.consumer)
            return
        manual = stream.noack()
        queue_empty = manual.channel.queue.empty
        batch_max = self.settings.batch_max
        events: list = []
        async for event in manual.events():
            events.append(event)
            if len(events) < batch_max and not queue_empty():
                continue
            inputs = [
                self.input_of(source, done.message) for done in events if not is_stale(self.app.consumer, done.message)
            ]  # sought since: it comes again, in order
            await self.process(inputs, source)
            for done in events:
                await manual.ack(done)
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

    async def consume_tap(self, tap: Tap, source: int, consumer: Any) -> None:
        """A batch is what the tap holds: whole fetches; chunks fetched before a seek or a rebalance are neither
        applied nor acknowledged (they are read again)."""
        monitor = self.app.monitor
        record_progress = self.outputs.record_progress
        batch_max = self.settings.batch_max
        ownership = self.ownership
        while True:
            chunks = [chunk for chunk in await tap.get(batch_max) if consumer.is_current(chunk)]
            if chunks and not ownership.held():  # woken from a pause: its partitions may be someone else's now
                await ownership.wait_held()
                chunks = [chunk for chunk in chunks if consumer.is_current(chunk)]
            if not chunks:
                continue
            inputs = []
            for chunk in chunks:
                # aiokafka ``ConsumerRecord``s: timestamps in ms (``build``: past Input's Python-level constructor)
                inputs.extend(
                    [
                        build(Input, (source, r.topic, r.partition, r.offset, r.key, r.value, r.headers, r.timestamp))
                        for r in chunk.records
                    ]
                )
                last = chunk.records[-1]
                record_progress(last.topic, last.partition, last.offset, last.timestamp)
                monitor.stream_inbound_time[chunk.tp] = time.monotonic()  # Faust's "stream idle" check
            stats = self.batch_stats.get(chunks[0].tp.topic)  # a tap serves one topic
            if stats is not None:
                stats.saw(len(inputs), batch_max)
            await self.process(inputs, source)
            for chunk in chunks:
                consumer.ack_chunk(chunk)

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

    async def process(self, inputs: list[Input], source: int) -> None:
        generation = self.app.consumer_generation_id
        if self.registry is not None:
            inputs = await self.registry.decode(inputs)
        try:
            outs = self.reconciler.process(inputs)
        except Exception as exc:  # the batch's table writes failed: dead-letter it, never ack it unprocessed
            log.exception("could not write the state of a batch of %d records; dead-lettering them", len(inputs))
            outs = self._dead_letter_all(exc, inputs)
        await self._in_order.produce(outs, lambda: self.publishable(generation, len(inputs)))

    def owns(self) -> bool:
        """The lease holds, or no consumer group keeps one (Faust's test tooling)."""
        return not isinstance(self.app.consumer, TappingConsumer) or self.ownership.held()

    async def publishable(self, generation: int, count: int) -> bool:
        """Whether a batch applied under ``generation`` may still be published, once it is its turn.

        A worker frozen between applying a batch and queueing its outputs wakes up without a lease. If a
        heartbeat of the same generation renews it, no one else owned the partitions: publish. If the
        partitions were reassigned meanwhile, the batch's records are read again by their owner, and its
        outputs, built from state the new owner has moved past, are dropped (this worker's copy of that
        state is wiped at the revocation: ``on_revoked``).
        """
        if self.owns():
            return True
        await self.ownership.wait_held()
        if self.app.consumer_generation_id == generation:
            return True
        log.warning(
            "dropped the outputs of a batch of %d records applied before a pause: its partitions were reassigned "
            "meanwhile (generation %s, now %s), and their owner reads those records again",
            count,
            generation,
            self.app.consumer_generation_id,
        )
        return False

    def _dead_letter_all(self, exc: Exception, inputs: list[Input]) -> list[Out]:
        return [
            self.reconciler.dead_letter_error(exc, i.topic, i.partition, i.offset, i.key, i.value, i.headers)
            for i in inputs
            if i.source != SOURCE_TICK
        ]

    async def send_ticks(self) -> None:
        """Timers cannot write tables (faust #497), so they send one tick per owned partition instead."""
        if not self.owns():
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
        if partitions:
            epochs = await asyncio.gather(*(self._claim(partition) for partition in partitions))
            log.info("claimed epochs %s for partitions %s", list(epochs), partitions)
        await self.outputs.produce(self.reconciler.rebuild(partitions))

    async def _claim(self, partition: int) -> int:
        """Writes the partition's epoch marker, catches up with whatever landed between the recovered end and
        the marker (a paused owner's late records: every replay applies them, so this owner does too), then
        claims the epoch: its own records carry it, and replays refuse older epochs after the marker."""
        changelog = self.pairs.changelog_topic.get_topic_name()
        tp = TP(changelog, partition)
        epoch = self.epochs.newest(partition) + 1
        key, value = epoch_key(partition), str(epoch).encode()
        marker = await started_producer(self.app).send_and_wait(
            changelog, value, key=key, partition=partition, headers=[epoch_header(epoch)]
        )
        recovered = self.pairs.data.persisted_offset(tp)
        start = 0 if recovered is None else recovered + 1
        if marker.offset > start and persists_offsets(self.pairs):  # the memory store recovers all, every time
            landed = await read_range(connect_args(self.settings), changelog, partition, start, marker.offset)
            self.pairs.apply_changelog_batch(landed)  # fenced by epoch, exactly as any replay applies them
            if recovered is not None:
                log.warning(
                    "%d changelog records of partition %d landed after its recovery and before this owner's epoch "
                    "marker (a paused owner's late writes?): applied as any replay applies them",
                    len(landed),
                    partition,
                )
        claimed = self.epochs.claim(partition)
        if claimed != epoch:  # a record of a newer epoch before the marker: another owner claimed it meanwhile
            raise RuntimeError(f"partition {partition}: epoch {claimed} claimed after writing marker {epoch}")
        self._write(partition, [(key, value)])  # the local copy; the changelog record is the marker
        self.pairs.data.set_persisted_offset(tp, marker.offset)
        return epoch

    def _changelog_actives(self) -> set[int]:
        changelog = self.pairs.changelog_topic.get_topic_name()
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == changelog}

    async def on_assigned(self, app: Any, assigned: Any, **kwargs: Any) -> None:
        consumer = app.consumer
        if isinstance(consumer, TappingConsumer) and not self.ownership.attached:
            self.ownership.attach(consumer.heartbeats)
        self.ownership.assigned(app.consumer_generation_id)
        self._actives = self._changelog_actives()

    async def on_revoked(self, app: Any, revoked: Any, **kwargs: Any) -> None:
        """Drop derived state of partitions that moved away; the new owner rebuilds it.

        If the lease lapsed while they were held, this worker's local state of its active partitions may
        hold what it applied and never published, or published after a new owner's records: it is wiped,
        and the next recovery of those partitions replays the changelog (fenced by epoch) from its start.
        """
        for partition in {tp.partition for tp in revoked if tp.topic == self.settings.tick_topic}:
            self.reconciler.forget(partition)
        for partition in self._actives:
            self.epochs.release(partition)
        if self.ownership.revoked() and self._actives:
            wiped = {p: wipe_partition(self.pairs, p, self.settings.partitions) for p in sorted(self._actives)}
            for partition in wiped:
                self.epochs.forget(partition)
            log.warning(
                "the ownership lease lapsed while partitions %s were held: wiped their local state (%s keys) so "
                "their next recovery replays the changelog from its start",
                sorted(wiped),
                sum(wiped.values()),
            )
        self._actives = set()

    async def flush_metrics(self, app: Any, **kwargs: Any) -> None:
        self.metrics.close()
        if self.registry is not None:
            await self.registry.close()


class InOrder:
    """Queues each batch's outputs after the previous batch's, without holding up the batches' processing.

    The four agents write the same table. Had each produced as soon as it could, a batch's changelog
    records could be queued after those of a batch applied later (``produce`` can wait: topic metadata, a
    full partition buffer), and a new owner or a standby replaying the changelog in offset order would end
    on the older value: a pair's MATCH state logged before its pending state, so the survivor of a kill -9
    declared it MISSING_CLOUD. A lock around apply and produce would do the same at a lower throughput
    (docs/performance.md): here the next batch is applied while this one's outputs are being queued.
    """

    def __init__(self, produce: Any) -> None:
        self._produce = produce
        self._last: asyncio.Future | None = None

    async def produce(self, outs: list[Out], publishable: Any = None) -> None:
        """Await it right after applying the batch: its turn is taken before the coroutine's first await.

        ``publishable``: awaited once it is the batch's turn; outputs it refuses are not produced.
        """
        previous, mine = self._last, asyncio.get_running_loop().create_future()
        self._last = mine
        try:
            if previous is not None:
                await asyncio.shield(previous)
            if publishable is None or await publishable():
                await self._produce(outs)
        finally:
            mine.set_result(None)
