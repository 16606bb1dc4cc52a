"""The reconciler's agents: one per input topic, one for re-keyed records, one for ticks.

Each is "decode → Reconciler → produce what it returns", with
``concurrency=1`` (faust-streaming #606: higher concurrency can commit past an
unprocessed message) and a per-record guard: an unexpected error dead-letters
that record (reason PROCESSING_ERROR) and the agent carries on, because an
agent that raises is restarted and may skip or stall (#175, #315).
"""

from __future__ import annotations

import logging
from dqhash.app import app, metrics, settings
from dqhash.agents import copartitioned_topic, produce, record_progress, watermark
from dqhash.reconciler import CLOUD, ONPREM, Reconciler
from dqhash.tables import pairs, scan_partition
from dqhash.timeutil import now_ms

log = logging.getLogger("dqhash.agents")

def sweep_horizon(partition: int, now: int) -> int:
    """Deadlines of a partition are swept only as far as its cloud-side inputs have been read.

    (Reads requested from dqhash's own producer are waited for per pair instead: classify row 22.)
    """
    return min(watermark(topic, partition, now) for topic in (settings.cloud_topic, settings.rekey_topic))


reconciler = Reconciler(settings, pairs, metrics, scan_partition, horizon=sweep_horizon)

onprem_topic = copartitioned_topic(settings.onprem_topic, internal=False)
cloud_topic = copartitioned_topic(settings.cloud_topic, internal=False)
rekey_topic = copartitioned_topic(settings.rekey_topic, internal=True)
tick_topic = copartitioned_topic(settings.tick_topic, internal=True)


def _timestamp_ms(message) -> int | None:
    return int(message.timestamp * 1000) if message.timestamp else None


async def _consume(stream, handle) -> None:
    async for event in stream.events():
        message = event.message
        record_progress(message)
        try:
            outs = handle(message)
        except Exception as exc:  # one bad record must never stop the worker
            log.exception("error processing %s[%d]@%d; dead-lettering it", message.topic, message.partition,
                          message.offset)
            outs = [reconciler.dead_letter_error(exc, message.topic, message.partition, message.offset,
                                                 message.key, message.value, message.headers)]
        await produce(outs)


@app.agent(onprem_topic, concurrency=1)
async def onprem_events(stream):
    """Topic-1: on-prem change events."""
    await _consume(stream, lambda m: reconciler.on_input(ONPREM, m.topic, m.partition, m.offset, m.key, m.value,
                                                         m.headers, _timestamp_ms(m)))


@app.agent(cloud_topic, concurrency=1)
async def cloud_hashes(stream):
    """Topic-2: cloud hashes."""
    await _consume(stream, lambda m: reconciler.on_input(CLOUD, m.topic, m.partition, m.offset, m.key, m.value,
                                                         m.headers, _timestamp_ms(m)))


@app.agent(rekey_topic, concurrency=1)
async def rekeyed(stream):
    """Records of either side whose source partition was not their PK's."""
    await _consume(stream, lambda m: reconciler.on_rekeyed(m.partition, m.offset, m.key, m.value, m.headers,
                                                             _timestamp_ms(m)))


@app.agent(tick_topic, concurrency=1)
async def ticks(stream):
    """Per-partition ticks: deadline sweep, expiry, window close — table writes inside the stream."""
    await _consume(stream, lambda m: reconciler.on_tick(m.partition, m.offset))


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
