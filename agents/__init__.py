"""Faust agents, by role: ``reconciler`` (inputs, re-keying, ticks) and ``producer`` (cloud lookups).

Shared here: producing what the domain returns. Records already carry their
encoded key and value, so every output topic is raw bytes, and they are
produced in record batches per topic-partition (``dqhash.batchsend``).
"""

from __future__ import annotations

from typing import Iterable

from faust.types import TP

from dqhash.app import app, settings
from dqhash.batchsend import BatchSender
from dqhash.inspection import RecentOutputs
from dqhash.reconciler import Out
from dqhash.watermark import input_watermark

_topics: dict = {}

#: The newest problem audit records and DLQ records this worker produced (for the web views).
recent = RecentOutputs()
#: A cheap test before parsing an audit record: only problems are kept.
_PROBLEM_MARK = b'"status":"MIS'

#: (topic, partition) → (offset, Kafka timestamp ms) of the newest record an agent of this worker processed.
progress: dict[tuple[str, int], tuple[int, int]] = {}


def record_progress(topic: str, partition: int, offset: int, timestamp_ms: int | None) -> None:
    progress[topic, partition] = (offset, timestamp_ms or 0)


def watermark(topic: str, partition: int, now: int) -> int:
    """See :func:`dqhash.watermark.input_watermark`."""
    tp = TP(topic, partition)
    consumer = app.consumer
    if consumer is None:
        return now
    return input_watermark(now, consumer.highwater(tp), consumer._committed_offset.get(tp),
                           progress.get((topic, partition)))


def copartitioned_topic(name: str, internal: bool):
    """A raw-bytes topic with DQHASH_PARTITIONS partitions, consumed by an agent and produced to alike."""
    topic = _topics[name] = app.topic(name, partitions=settings.partitions, key_serializer="raw",
                                      value_serializer="raw", internal=internal)
    return topic


def output_topic(name: str):
    topic = _topics.get(name)
    if topic is None:
        topic = _topics[name] = app.topic(name, key_serializer="raw", value_serializer="raw", internal=False)
    return topic


#: Faust's own producer, used a batch at a time
sender = BatchSender(lambda: app.producer._ensure_producer())
#: topics that exist (declared at start-up, or by :func:`produce` once, as ``Topic.send`` would)
declared: set[str] = set()


async def produce(outs: Iterable[Out]) -> None:
    outs = outs if isinstance(outs, list) else list(outs)
    topics = {out.topic for out in outs}
    for name in topics - declared:
        await output_topic(name).maybe_declare()
        declared.add(name)
    await sender.send(outs)
    dlq, audit = settings.dlq_topic, settings.audit_topic
    if dlq in topics or audit in topics:
        for out in outs:
            if out.topic == dlq:
                recent.saw("dlq", out.key, out.value, out.headers)
            elif out.topic == audit and _PROBLEM_MARK in out.value:
                recent.saw("audit", out.key, out.value, out.headers)
