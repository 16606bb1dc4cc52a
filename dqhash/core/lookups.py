"""Lookup requests: what the reconciler asks the cloud hash producer to read."""

from __future__ import annotations

from typing import NamedTuple

import orjson


class LookupRequest(NamedTuple):
    pk: str
    not_before_ms: int
    attempt: int  # 0: the event's first read; n: the n-th recheck
    raw: bytes  # the request as received, for the DLQ
    partition: int
    offset: int


def encode_request(pk: str, not_before_ms: int, attempt: int) -> bytes:
    return orjson.dumps({"pk": pk, "not_before": not_before_ms, "attempt": attempt})


def decode_request(raw: bytes, partition: int, offset: int) -> LookupRequest:
    doc = orjson.loads(raw)
    return LookupRequest(
        str(doc["pk"]), int(doc.get("not_before", 0)), int(doc.get("attempt", 0)), raw, partition, offset
    )
