"""The aiokafka clients behind Faust's producer and consumer, and the consumer's committed offsets.

Faust exposes neither the started aiokafka producer (``dqhash.kafka.batch_sender`` appends whole record
batches to it) nor a partition's committed offset (the sweep horizon needs it: ``core.watermark``).
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
