"""A row's Cassandra token, computed as the cluster computes it: cassandra-driver's Murmur3 over the
serialized partition key (one column: its bytes; several: each length-prefixed and 0-terminated, as the
driver builds a routing key).

The on-prem publisher needs it to number a row's token range without a cluster at hand; the scan checks it
against the cluster's own ``token()``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from cassandra.cqltypes import _cqltypes
from cassandra.murmur3 import murmur3

from dqhash.core.token_ranges import MAX_TOKEN, MIN_TOKEN

#: The protocol version whose serialization is used (every v3+ version serializes key types alike).
_PROTOCOL = 4
_INTEGERS = {"int", "bigint", "smallint", "tinyint", "varint", "counter"}


class TokenError(ValueError):
    """A key value the declared CQL type cannot serialize."""


def serialized(value: Any, cql_type: str) -> bytes:
    cql_type = cql_type.lower()
    kind = _cqltypes.get(cql_type)
    if kind is None:
        raise TokenError(f"unsupported partition key type {cql_type!r}")
    try:
        if cql_type in _INTEGERS and isinstance(value, str):
            value = int(value)
        if cql_type in ("uuid", "timeuuid") and isinstance(value, str):
            from uuid import UUID

            value = UUID(value)
        return bytes(kind.serialize(value, _PROTOCOL))
    except (TypeError, ValueError, struct.error) as exc:
        raise TokenError(f"{value!r} is not a {cql_type}: {exc}") from exc


def routing_key(values: Sequence[Any], cql_types: Sequence[str]) -> bytes:
    parts = [serialized(v, t) for v, t in zip(values, cql_types)]
    if len(parts) == 1:
        return parts[0]
    return b"".join(struct.pack(">H", len(p)) + p + b"\x00" for p in parts)


def token_of(row: Mapping[str, Any], partition_key: Sequence[str], types: Mapping[str, str]) -> int:
    """The token of ``row``'s partition key (columns typed by ``types``, text when undeclared)."""
    key = routing_key([row[c] for c in partition_key], [types.get(c, "text") for c in partition_key])
    token = int(murmur3(key))
    return MAX_TOKEN if token == MIN_TOKEN else token  # as Cassandra's Murmur3Partitioner normalises it
