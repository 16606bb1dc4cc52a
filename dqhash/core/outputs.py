"""Output records: audit rows (one per classification) and dead-letter headers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import orjson

from dqhash.core.pair_state import Verdict
from dqhash.core.statuses import PROBLEMS, REPAIR_ACTIONS
from dqhash.core.table_keys import split_key
from dqhash.core.timeutil import format_ms


def audit_id(pk: str, verdict: Verdict) -> str:
    """Deterministic: the same classification of the same event always gets the same id.

    Replays and redeliveries then upsert the same row downstream instead of
    adding one. ``late`` is part of the identity: a late re-classification is a
    new fact about the event.
    """
    return _audit_id(pk, verdict, verdict.status.value)


def _audit_id(pk: str, verdict: Verdict, status: str, late: bool | None = None) -> str:
    late = verdict.late if late is None else late
    key = f"{pk}\x1f{verdict.event_id}\x1f{verdict.event_ts}\x1f{status}\x1f{'1' if late else '0'}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def withdrawn_audit_id(pk: str, verdict: Verdict) -> str | None:
    """The audit id of the verdict a withdrawal (``Verdict.withdraws``) takes back, None for any other verdict."""
    counted = verdict.withdraws
    if counted is None:
        return None
    late = counted.startswith(LATE_PREFIX)
    return _audit_id(pk, verdict, counted[len(LATE_PREFIX) :] if late else counted, late)


#: how a late verdict is counted in its window: ``LATE_<status>``
LATE_PREFIX = "LATE_"


#: window boundaries: a few values, in every audit record
_format_boundary = lru_cache(maxsize=1024)(format_ms)


def audit_record(key: str, verdict: Verdict, default_table: str = "default") -> dict[str, Any]:
    """The audit record of a verdict on the pair ``key`` (``core.table_keys``): its table and PK apart."""
    status = verdict.status._value_  # ``.value`` is a Python-level property; this runs for every verdict
    table, pk = split_key(key, default_table)
    return {
        "audit_id": _audit_id(key, verdict, status),
        "pk": pk,
        "table": table,
        "event_id": verdict.event_id,
        "status": status,
        "reason": verdict.reason,
        "late": verdict.late,
        "action": verdict.action,
        "hash_onprem": verdict.hash_onprem,
        "hash_cloud": verdict.hash_cloud,
        "event_ts": format_ms(verdict.event_ts),
        "cloud_ts": format_ms(verdict.cloud_ts) if verdict.cloud_ts is not None else None,
        "window_start": _format_boundary(verdict.window_start),
        "window_end": _format_boundary(verdict.window_end),
        "classified_at": format_ms(verdict.classified_ms),
        "time_to_classify_ms": verdict.classified_ms - verdict.arrived_ms,
        "rechecks": verdict.rechecks,
        "recheck_results": list(verdict.recheck_results),
        "snapshot_id": verdict.snapshot_id,
        "differing_columns": list(verdict.differing_columns),
        "withdraws": withdrawn_audit_id(key, verdict),
    }


#: Confirmed problems a resync job should look at (``core.statuses``); dqhash itself never writes to the cloud.
REPAIRABLE = frozenset(PROBLEMS)


#: the repair action of a withdrawal: the request it names (``withdraws``) is no longer open
REPAIR_CANCEL = "cancel"


def repair_request(audit: dict[str, Any]) -> dict[str, Any]:
    """What a resync job (e.g. a Debezium incremental snapshot of this PK) needs; for a withdrawal, which open
    request to drop (``repair: cancel``, ``withdraws``: its audit id)."""
    return {
        "repair": REPAIR_CANCEL if audit.get("withdraws") else REPAIR_ACTIONS[audit["status"]],
        "withdraws": audit.get("withdraws"),
        "snapshot_id": audit.get("snapshot_id"),
        "differing_columns": audit.get("differing_columns", []),
        **{
            key: audit[key]
            for key in (
                "audit_id",
                "pk",
                "table",
                "event_id",
                "status",
                "reason",
                "late",
                "hash_onprem",
                "hash_cloud",
                "event_ts",
                "classified_at",
                "rechecks",
            )
        },
    }


#: DLQ header names (in the spirit of Kafka Connect's ``__connect.errors.*``).
DLQ_REASON = "dq.error.reason"
DLQ_MESSAGE = "dq.error.message"
DLQ_TOPIC = "dq.source.topic"
DLQ_PARTITION = "dq.source.partition"
DLQ_OFFSET = "dq.source.offset"
#: the table the record names, when it can be read (docs/catalog.md)
DLQ_TABLE = "dq.table"
DLQ_HEADERS = (DLQ_REASON, DLQ_MESSAGE, DLQ_TOPIC, DLQ_PARTITION, DLQ_OFFSET, DLQ_TABLE)


def dlq_headers(
    reason: str,
    message: str,
    topic: str,
    partition: int,
    offset: int,
    original: Iterable[tuple[str, bytes]] | None,
    table: str | None = None,
) -> list[tuple[str, bytes]]:
    """Reason headers first (and the table, when known), then the record's own headers (minus stale error headers
    of an earlier pass)."""
    headers = [
        (DLQ_REASON, reason.encode()),
        (DLQ_MESSAGE, message.encode()),
        (DLQ_TOPIC, topic.encode()),
        (DLQ_PARTITION, str(partition).encode()),
        (DLQ_OFFSET, str(offset).encode()),
    ]
    if table:
        headers.append((DLQ_TABLE, table.encode()))
    headers.extend((k, v) for k, v in (original or ()) if k not in DLQ_HEADERS)
    return headers


def named_table(value: bytes | None) -> str | None:
    """The ``table`` a rejected record names, if it is a JSON object that names one (read only to label its dead
    letter: the record was rejected, so nothing else in it is trusted)."""
    if not value or b'"table"' not in value:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    table = doc.get("table") if isinstance(doc, dict) else None
    return table[:200] if isinstance(table, str) and table.isprintable() else None
