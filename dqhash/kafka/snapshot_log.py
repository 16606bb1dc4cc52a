"""Reading the snapshots topic whole: the newest record of each key (it is compacted, and small)."""

from __future__ import annotations

from typing import Any

import orjson

from dqhash.kafka.topic_reader import read_records
from dqhash.settings import Settings


async def read_snapshot_records(settings: Settings, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Every key's newest record. Raises ``TimeoutError`` if the topic cannot be read to its end."""
    latest: dict[bytes, dict[str, Any]] = {}
    for record in (await read_records(settings, settings.snapshot_topic, None, timeout_s)).records:
        key = record.key or b""
        if record.value is None:
            latest.pop(key, None)
            continue
        try:
            latest[key] = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            continue  # not ours: the report counts only what it can read
    return list(latest.values())
