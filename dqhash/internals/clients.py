"""The aiokafka clients behind Faust's producer and consumer, the consumer's committed offsets, fresh metadata.

Faust exposes neither the started aiokafka producer (``dqhash.kafka.batch_sender`` appends whole record
batches to it) nor a partition's committed offset (the sweep horizon needs it: ``core.watermark``); aiokafka's
consumer has no public call that refreshes the metadata its ``partitions_for_topic`` reads (the benchmark
counts what the worker produced to topics the consumer has not seen yet).
"""

from __future__ import annotations

from typing import Any

from faust.types import TP


def started_producer(app: Any) -> Any:
    """The aiokafka producer inside Faust's producer (started by Faust at worker start)."""
    return app.producer._ensure_producer()


def committed_offset(consumer: Any, tp: TP) -> int | None:
    """The offset Faust last committed for ``tp`` (None: nothing committed yet)."""
    committed: int | None = consumer._committed_offset.get(tp)
    return committed


async def partitions_now(consumer: Any, topic: str) -> set[int] | None:
    """``consumer.partitions_for_topic(topic)`` after a metadata refresh of the consumer's own client."""
    await consumer._client.force_metadata_update()
    partitions: set[int] | None = consumer.partitions_for_topic(topic)
    return partitions
