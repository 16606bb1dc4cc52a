"""Debezium's values as the cloud sees them: a field of a change event → the value the hasher reads for its column.

The Connect schema of each field (its type and its semantic name, ``io.debezium.time.MicroTimestamp`` and the
like) says what a value means; the catalog's CQL type of the column says what the cloud holds. Together they
give the spec's value (docs/debezium.md has the table):

- times: ``Timestamp`` (ms), ``MicroTimestamp`` (µs), ``NanoTimestamp`` (ns) since the epoch, ``ZonedTimestamp``
  (ISO with a zone); ``Date`` (days); ``Time`` (ms), ``MicroTime`` (µs), ``NanoTime`` (ns) since midnight. A
  ``timestamp`` column holds milliseconds, so finer values are truncated (floor) the way Cassandra stores them;
- ``Decimal``: the unscaled two's-complement value (base64 in JSON) with the scale in the schema;
  ``VariableScaleDecimal``: a ``{scale, value}`` struct; ``decimal.handling.mode=string``: its text;
- bytes: base64 in JSON (``binary.handling.mode=bytes``); as a string in the ``base64``, ``base64-url-safe``
  or ``hex`` mode, named by DQHASH_DEBEZIUM_BINARY_HANDLING;
- MySQL's ``TINYINT(1)`` (an integer) for a ``boolean`` column.

What cannot be verified exactly raises :class:`Unverifiable` naming the column and why: a value Debezium did not
send (PostgreSQL's TOAST placeholder), or a ``decimal.handling.mode=double`` value for a ``decimal`` column.
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from typing import Any

#: Debezium's placeholder for a value it did not read (an unchanged TOASTed column; ``unavailable.value.placeholder``)
UNAVAILABLE = "__debezium_unavailable_value"
_UNAVAILABLE_BYTES = UNAVAILABLE.encode()
BINARY_MODES = ("bytes", "base64", "base64-url-safe", "hex")

_TIMESTAMPS = {
    "io.debezium.time.Timestamp": 1,
    "org.apache.kafka.connect.data.Timestamp": 1,
    "io.debezium.time.MicroTimestamp": 1_000,
    "io.debezium.time.NanoTimestamp": 1_000_000,
}
_TIMES_NS = {
    "io.debezium.time.Time": 1_000_000,
    "org.apache.kafka.connect.data.Time": 1_000_000,
    "io.debezium.time.MicroTime": 1_000,
    "io.debezium.time.NanoTime": 1,
}
_DATES = ("io.debezium.time.Date", "org.apache.kafka.connect.data.Date")
_DECIMAL = "org.apache.kafka.connect.data.Decimal"
_VARIABLE_DECIMAL = "io.debezium.data.VariableScaleDecimal"


class Unverifiable(ValueError):
    """A value that cannot be compared exactly with the cloud's: the message names the column and says why."""


class Undecodable(ValueError):
    """A value that does not read as its schema says: the change is dead-lettered with this message."""


def convert(column: str, value: Any, schema: dict[str, Any] | None, cql: str | None, binary_mode: str = "bytes") -> Any:
    """The value the hasher reads for ``column``: ``value`` as its Connect ``schema`` says, for the ``cql`` type."""
    if value is None:
        return None
    _check_sent(column, value, schema)
    name = (schema or {}).get("name")
    if name is not None and name in _SEMANTIC:
        return _semantic(column, value, name, schema or {})
    kind = (schema or {}).get("type")
    base = (cql or "").split("<", 1)[0].strip().lower()
    if kind in ("float", "float32", "float64", "double") and base == "decimal":
        raise Unverifiable(
            f"column {column!r}: a decimal sent as a double (decimal.handling.mode=double) has lost digits; "
            "set decimal.handling.mode=precise or string on the connector"
        )
    if kind == "bytes" or base == "blob":
        return _bytes(column, value, kind, binary_mode)
    if base == "boolean" and type(value) is int and value in (0, 1):
        return bool(value)  # MySQL's TINYINT(1)
    if kind == "array" and isinstance(value, list):
        return _elements(column, value, schema or {}, cql, binary_mode)
    return value


def _elements(column: str, value: list[Any], schema: dict[str, Any], cql: str | None, binary_mode: str) -> list[Any]:
    """An array's elements, each by the array's element schema and the collection's element type."""
    inner = cql[cql.index("<") + 1 : cql.rindex(">")] if cql and "<" in cql else None
    return [convert(column, v, schema.get("items"), inner, binary_mode) for v in value]


_SEMANTIC = frozenset({*_TIMESTAMPS, *_TIMES_NS, *_DATES, "io.debezium.time.ZonedTime", _DECIMAL, _VARIABLE_DECIMAL})


def _semantic(column: str, value: Any, name: str, schema: dict[str, Any]) -> Any:
    """A value whose schema names its meaning (times, dates, decimals)."""
    if name in _TIMESTAMPS:
        return _integer(column, value) // _TIMESTAMPS[name]
    if name in _TIMES_NS:
        return _integer(column, value) * _TIMES_NS[name]
    if name in _DATES:
        return _integer(column, value)
    if name == "io.debezium.time.ZonedTime":
        return value[:-1] if isinstance(value, str) and value.endswith("Z") else value
    return _decimal(column, value, schema)


def _check_sent(column: str, value: Any, schema: dict[str, Any] | None) -> None:
    if value == UNAVAILABLE or (isinstance(value, str) and _is_unavailable_bytes(value, schema)):
        raise Unverifiable(f"column {column!r}: Debezium did not send its value (an unchanged TOAST column)")


def _is_unavailable_bytes(value: str, schema: dict[str, Any] | None) -> bool:
    """The placeholder of a bytes column, base64 as the JSON converter writes bytes."""
    if (schema or {}).get("type") != "bytes":
        return False
    try:
        return base64.b64decode(value, validate=True) == _UNAVAILABLE_BYTES
    except (binascii.Error, ValueError):
        return False


def _integer(column: str, value: Any) -> int:
    if type(value) is not int:
        raise Undecodable(f"column {column!r}: expected an integer, got {str(value)[:40]!r}")
    return value


def _decimal(column: str, value: Any, schema: dict[str, Any]) -> Decimal | str:
    scale: Any
    raw: Any
    if isinstance(value, dict):  # VariableScaleDecimal: {"scale": s, "value": base64}
        scale, raw = value.get("scale"), value.get("value")
    else:
        scale, raw = (schema.get("parameters") or {}).get("scale"), value
    if isinstance(raw, str) and schema.get("type") == "string":
        return raw  # decimal.handling.mode=string
    try:
        unscaled = int.from_bytes(base64.b64decode(raw, validate=True), "big", signed=True)
        return Decimal(unscaled).scaleb(-int(scale))
    except (binascii.Error, ValueError, TypeError):
        raise Undecodable(
            f"column {column!r}: not a Connect decimal (base64 unscaled value, scale {scale!r})"
        ) from None


def _bytes(column: str, value: Any, kind: str | None, mode: str) -> bytes:
    if not isinstance(value, str):
        raise Undecodable(f"column {column!r}: expected bytes as text, got {type(value).__name__}")
    try:
        if kind == "bytes" or mode in ("bytes", "base64"):
            return base64.b64decode(value, validate=True)
        if mode == "base64-url-safe":
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return bytes.fromhex(value)
    except (binascii.Error, ValueError):
        raise Undecodable(f"column {column!r}: {value[:40]!r} is not {mode if kind != 'bytes' else 'base64'}") from None
