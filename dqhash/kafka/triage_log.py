"""Following the triage topic on every worker: read from its beginning, then kept up to date."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from dqhash.kafka import topic_reader
from dqhash.settings import Settings

log = logging.getLogger(__name__)


async def follow(settings: Settings, apply: Callable[[dict[str, Any] | None, str], None]) -> None:
    """Apply every record of the triage topic, forever (``topic_reader.follow``: it reconnects after an error)."""

    def applied(record: topic_reader.TopicRecord) -> None:
        audit_id = (record.key or b"").decode(errors="replace")
        try:
            apply(orjson.loads(record.value) if record.value is not None else None, audit_id)
        except orjson.JSONDecodeError:
            log.warning("skipped an unreadable triage record at offset %d", record.offset)

    await topic_reader.follow(settings, settings.triage_topic, None, applied)
