"""The reconciler's agents: one per input topic, one for re-keyed records, one for ticks.

Each is "a batch of records → Reconciler.process → produce what it returns",
with ``concurrency=1`` (faust-streaming #606: higher concurrency can commit past
an unprocessed message). A batch is whatever the agent's stream has buffered
(see ``_consume``); its records are acknowledged by hand once its outputs are
queued, so Faust commits no offset of an unprocessed record: at-least-once, per batch. ``Reconciler.process`` guards each record (an
unexpected error dead-letters that record, reason PROCESSING_ERROR); if the
batch's table writes fail, every record of the batch is dead-lettered rather
than acknowledged unprocessed, because an agent that raises is restarted and may
skip or stall (#175, #315).
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
from mode.utils.aiter import aiter

from dqhash.app import app, metrics, settings
from dqhash.agents import copartitioned_topic, declared, produce, record_progress, sender, watermark
from dqhash.reconciler import (SOURCE_CLOUD, SOURCE_ONPREM, SOURCE_REKEY, SOURCE_TICK, Input, Out,
                               Reconciler)
from dqhash.tables import batch_writer, pairs, partition_reader, persist_offset, scan_partition
from dqhash.timeutil import now_ms
from dqhash.taps import Tap
from dqhash.transport import Consumer as TappingConsumer, is_stale
from dqhash.tuples import build

log = logging.getLogger("dqhash.agents")

def sweep_horizon(partition: int, now: int) -> int:
    """Deadlines of a partition are swept only as far as its cloud-side inputs have been read.

    (Reads requested from dqhash's own producer are waited for per pair instead: classify row 22.)
    """
    return min(watermark(topic, partition, now) for topic in (settings.cloud_topic, settings.rekey_topic))


reconciler = Reconciler(settings, pairs, metrics, scan_partition, horizon=sweep_horizon, read=partition_reader(pairs),
                        write=batch_writer(pairs))

# The table's changelog is written by ``tables.batch_writer`` through ``produce`` (declared by Faust with the table).
declared.add(pairs.changelog_topic.get_topic_name())
sender.on_delivered[pairs.changelog_topic.get_topic_name()] = persist_offset(pairs)

onprem_topic = copartitioned_topic(settings.onprem_topic, internal=False)
cloud_topic = copartitioned_topic(settings.cloud_topic, internal=False)
rekey_topic = copartitioned_topic(settings.rekey_topic, internal=True)
tick_topic = copartitioned_topic(settings.tick_topic, internal=True)


async def _consume(stream, source: int) -> None:
    """Process what is buffered as one batch: one record when the agent keeps up (no added latency),
    up to DQHASH_BATCH_MAX when it is behind, which is when batching pays.

    Acknowledged by hand, after the batch's outputs are queued: Faust commits only acknowledged offsets.
    On dqhash's transport the records come from a tap (``dqhash.taps``), whole fetched batches past
    Faust's per-record path; elsewhere (Faust's test tooling, another transport) from the stream.
    """
    tap = _tap(stream)
    if tap is not None:
        await _consume_tap(tap, source, app.consumer)
        return
    manual = stream.noack()
    queue_empty = manual.channel.queue.empty
    events: list = []
    async for event in manual.events():
        events.append(event)
        if len(events) < settings.batch_max and not queue_empty():
            continue
        inputs = [_input(source, done.message) for done in events
                  if not is_stale(app.consumer, done.message)]  # sought since: it comes again, in order
        await _process(inputs, source)
        for done in events:
            await manual.ack(done)
        events = []


def _tap(stream) -> Tap | None:
    """A tap for the stream's topic, if the consumer hands records to taps; subscribes the topic."""
    channel = stream.channel
    consumer = app.consumer
    if not isinstance(channel, faust.TopicT) or not isinstance(consumer, TappingConsumer):
        return None
    tap = Tap(maxsize=max(app.conf.stream_buffer_maxsize, 2 * settings.batch_max))
    for name in channel.topics:
        consumer.taps[name] = tap
    aiter(channel)  # adds the topic to Faust's conductor: subscribed, assigned, its records come to the tap
    return tap


async def _consume_tap(tap: Tap, source: int, consumer: TappingConsumer) -> None:
    """A batch is what the tap holds: whole fetches; chunks fetched before a seek or a rebalance are neither
    applied nor acknowledged (they are read again)."""
    monitor = app.monitor
    while True:
        chunks = [chunk for chunk in await tap.get(settings.batch_max) if consumer.is_current(chunk)]
        if not chunks:
            continue
        inputs = []
        for chunk in chunks:
            # aiokafka ``ConsumerRecord``s: timestamps in ms (``build``: past Input's Python-level constructor)
            inputs.extend([build(Input, (source, r.topic, r.partition, r.offset, r.key, r.value, r.headers, r.timestamp))
                           for r in chunk.records])
            last = chunk.records[-1]
            record_progress(last.topic, last.partition, last.offset, last.timestamp)
            monitor.stream_inbound_time[chunk.tp] = time.monotonic()  # Faust's "stream idle" check
        await _process(inputs, source)
        for chunk in chunks:
            consumer.ack_chunk(chunk)


def _input(source: int, message) -> Input:
    """A Faust ``Message`` (timestamps in seconds) as the reconciler's input."""
    timestamp_ms = int(message.timestamp * 1000) if message.timestamp else None
    record_progress(message.topic, message.partition, message.offset, timestamp_ms)
    return Input(source, message.topic, message.partition, message.offset, message.key, message.value,
                 message.headers, timestamp_ms)


class _InOrder:
    """Queues each batch's outputs after the previous batch's, without holding up the batches' processing.

    The four agents write the same table. Had each produced as soon as it could, a batch's changelog
    records could be queued after those of a batch applied later (``produce`` can wait: topic metadata, a
    full partition buffer), and a new owner or a standby replaying the changelog in offset order would end
    on the older value. Seen at start-up under load: a pair's MATCH state logged before its pending state,
    so the survivor of a kill -9 declared it MISSING_CLOUD (5 runs in about 30). A lock around apply and
    produce did the same at 0.6x the throughput (200k pre-loaded pairs): here the next batch is applied
    while this one's outputs are being queued.
    """

    def __init__(self) -> None:
        self._last: asyncio.Future | None = None

    async def produce(self, outs: list[Out]) -> None:
        """Await it right after applying the batch: its turn is taken before the coroutine's first await."""
        previous, mine = self._last, asyncio.get_running_loop().create_future()
        self._last = mine
        try:
            if previous is not None:
                await asyncio.shield(previous)
            await produce(outs)
        finally:
            mine.set_result(None)


_in_order = _InOrder()


async def _process(inputs: list[Input], source: int) -> None:
    try:
        outs = reconciler.process(inputs)
    except Exception as exc:  # the batch's table writes failed: dead-letter it, never ack it unprocessed
        log.exception("could not write the state of a batch of %d records; dead-lettering them", len(inputs))
        outs = _dead_letter_all(exc, inputs)
    await _in_order.produce(outs)


def _dead_letter_all(exc: Exception, inputs: list[Input]) -> list[Out]:
    return [reconciler.dead_letter_error(exc, i.topic, i.partition, i.offset, i.key, i.value, i.headers)
            for i in inputs if i.source != SOURCE_TICK]


@app.agent(onprem_topic, concurrency=1)
async def onprem_events(stream):
    """Topic-1: on-prem change events."""
    await _consume(stream, SOURCE_ONPREM)


@app.agent(cloud_topic, concurrency=1)
async def cloud_hashes(stream):
    """Topic-2: cloud hashes."""
    await _consume(stream, SOURCE_CLOUD)


@app.agent(rekey_topic, concurrency=1)
async def rekeyed(stream):
    """Records of either side whose source partition was not their PK's."""
    await _consume(stream, SOURCE_REKEY)


@app.agent(tick_topic, concurrency=1)
async def ticks(stream):
    """Per-partition ticks: deadline sweep, expiry, window close — table writes inside the stream."""
    await _consume(stream, SOURCE_TICK)


@app.timer(interval=settings.tick_seconds)
async def send_ticks() -> None:
    """Timers cannot write tables (faust #497), so they send one tick per owned partition instead."""
    value = str(now_ms()).encode()
    for tp in app.assignor.assigned_actives():
        if tp.topic == settings.tick_topic:
            await tick_topic.send(value=value, partition=tp.partition)


@pairs.on_recover
async def _rebuild_index() -> None:
    """The deadline index is derived state: rebuild it once the tables are recovered."""
    changelog = pairs.changelog_topic.get_topic_name()
    await produce(reconciler.rebuild(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog))


@app.on_partitions_revoked.connect
async def _on_revoked(app, revoked, **kwargs) -> None:
    """Drop derived state of partitions that moved away; the new owner rebuilds it."""
    for partition in {tp.partition for tp in revoked if tp.topic == settings.tick_topic}:
        reconciler.forget(partition)


@app.on_before_shutdown.connect
async def _flush_metrics(app, **kwargs) -> None:
    metrics.close()
