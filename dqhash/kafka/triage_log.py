"""Following the triage topic on every worker: read from its beginning, then kept up to date."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from dqhash.kafka.security import connect_args
from dqhash.settings import Settings

log = logging.getLogger(__name__)


async def follow(settings: Settings, apply: Callable[[dict[str, Any] | None, str], None]) -> None:
    """Apply every record of the triage topic (one partition), forever; reconnects after an error."""
    while True:
        consumer = AIOKafkaConsumer(
            **connect_args(settings), enable_auto_commit=False, auto_offset_reset="earliest", group_id=None
        )
        try:
            await consumer.start()
            tp = TopicPartition(settings.triage_topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while True:
                for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                    for record in records:
                        audit_id = (record.key or b"").decode(errors="replace")
                        try:
                            apply(orjson.loads(record.value) if record.value is not None else None, audit_id)
                        except orjson.JSONDecodeError:
                            log.warning("skipped an unreadable triage record at offset %d", record.offset)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker away: try again, the triage views keep what they have
            log.warning("following %s failed (%s: %s); retrying in 5 s", settings.triage_topic, type(exc).__name__, exc)
            await asyncio.sleep(5)
        finally:
            await consumer.stop()
