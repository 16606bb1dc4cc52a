"""Reading the snapshots topic whole: the newest record of each key (it is compacted, and small)."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from dqhash.kafka.security import connect_args
from dqhash.settings import Settings


async def read_snapshot_records(settings: Settings, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Every key's newest record, read from the beginning to the end offsets taken at the start.

    Raises ``TimeoutError`` if the end is not reached in ``timeout_s`` (the broker is slow or gone).
    """
    consumer = AIOKafkaConsumer(
        **connect_args(settings), enable_auto_commit=False, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        # one partition, as ``dqhash topics create`` makes it (more, if a cluster's metadata already shows them)
        partitions = consumer.partitions_for_topic(settings.snapshot_topic) or {0}
        tps = [TopicPartition(settings.snapshot_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        latest: dict[bytes, dict[str, Any]] = {}
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=int(timeout_s * 1000))
            if not batches:
                raise TimeoutError(f"the snapshots topic {settings.snapshot_topic} was not read to its end")
            for tp, records in batches.items():
                for record in records:
                    if record.value is None:
                        latest.pop(record.key or b"", None)
                    else:
                        try:
                            latest[record.key or b""] = orjson.loads(record.value)
                        except orjson.JSONDecodeError:
                            continue  # not ours: the report counts only what it can read
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return list(latest.values())
    finally:
        await consumer.stop()
