"""Confluent's wire format (Schema Registry): magic byte 0, a 4-byte big-endian schema id, then the body.

Pure: the framing, and an Avro record's values made the contract's JSON (docs/contracts.md, "Schema Registry
inputs"). Decoding the body is fastavro's (``dqhash.kafka.schema_registry``); what failed travels to the
engine in headers, so the record is dead-lettered there with its reason, like any rejection.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

MAGIC = 0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: headers a failed decoding leaves on the record (its original bytes stay its value)
DECODE_REASON, DECODE_MESSAGE = "dq.decode.reason", "dq.decode.message"
#: header naming the schema a record was decoded by (its value is then the contract's JSON)
DECODED_FROM = "dq.decoded.schema_id"


def is_framed(value: bytes | None) -> bool:
    """A JSON document never starts with a zero byte: one that does is in the wire format."""
    return bool(value) and value[0] == MAGIC  # type: ignore[index]


def split_frame(value: bytes) -> tuple[int, bytes] | None:
    """(schema id, body), or None if the value is too short to be framed."""
    if len(value) < 5 or value[0] != MAGIC:
        return None
    return int.from_bytes(value[1:5], "big"), value[5:]


def plain(value: Any) -> Any:
    """An Avro value as the contract's JSON value: timestamps as epoch ms, decimals as text, bytes as base64."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    return value
