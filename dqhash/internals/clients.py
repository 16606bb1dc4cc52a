"""The aiokafka clients behind Faust's producer and consumer, the consumer's committed offsets, fresh metadata.

Faust exposes neither the started aiokafka producer (``dqhash.kafka.batch_sender`` appends whole record
batches to it) nor a partition's committed offset and the time its high watermark was fetched (the sweep horizon needs
both: ``core.watermark``); aiokafka's
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


def highwater_fetched_at(consumer: Any, tp: TP) -> int | None:
    """Wall-clock ms at which the fetch that reported ``tp``'s current high watermark was answered.

    aiokafka's public ``last_poll_timestamp``, on the aiokafka consumer inside Faust's consumer thread.
    A caught-up flag is only as recent as this: a worker frozen for a minute wakes with the highwater of
    its last fetch before the pause (``core.watermark``).
    """
    thread = getattr(consumer, "_thread", None)
    if thread is None:
        return None
    fetched_at: int | None = thread._ensure_consumer().last_poll_timestamp(tp)
    return fetched_at


async def partitions_now(consumer: Any, topic: str) -> set[int] | None:
    """``consumer.partitions_for_topic(topic)`` after a metadata refresh of the consumer's own client."""
    await consumer._client.force_metadata_update()
    partitions: set[int] | None = consumer.partitions_for_topic(topic)
    return partitions
