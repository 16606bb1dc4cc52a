"""``dqhash tail``: an output topic's records as JSON lines, filtered, so nobody writes a consumer to see a verdict.

Pure: a record (partition, offset, timestamp, key, value, headers) in, a JSON-ready dict out, or None when the
filters leave it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from dqhash.ops.inspection import dlq_entry, public

#: what ``dqhash tail`` reads → the setting naming its topic
TOPICS = {"audit": "audit_topic", "dlq": "dlq_topic", "repair": "repair_topic", "metrics": "metrics_topic"}


def line(
    kind: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    pk: str | None = None,
    status: str | None = None,
) -> dict[str, Any] | None:
    """The record as shown, with where it sits (``_partition``, ``_offset``); None when ``pk`` or ``status`` (the
    verdict's status, or a dead letter's reason) does not match, or the record is a tombstone."""
    if value is None:
        return None
    if kind == "dlq":
        doc = public(dlq_entry(key, value, headers))
        shown_pk, shown_status = doc["key"], doc["reason"]
    else:
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            doc = {"undecodable": value[:200].decode(errors="replace")}
        if not isinstance(doc, dict):
            doc = {"value": doc}
        shown_pk, shown_status = doc.get("pk"), doc.get("status")
    if pk is not None and shown_pk != pk:
        return None
    if status is not None and shown_status != status:
        return None
    return {**doc, "_partition": partition, "_offset": offset}
