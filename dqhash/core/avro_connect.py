"""An Avro change event read back as the JSON converter would have written it: ``{"schema": ..., "payload": ...}``.

Debezium with Confluent's (or Apicurio's) Avro converter writes each Connect schema as an Avro schema, keeping what
Connect knew in annotations: ``connect.name`` (the semantic type: ``io.debezium.time.MicroTimestamp``,
``org.apache.kafka.connect.data.Decimal``), ``connect.parameters`` (a decimal's ``scale``) and ``connect.type``
(``int16`` for an Avro ``int``). So the Debezium reader needs no second set of type rules: it reads the Avro
record by its schema with every ``logicalType`` removed (:func:`plain_schema`), which leaves each value in the
form Connect gave the converter (a ``Timestamp`` as its milliseconds, a ``Date`` as its days, a ``Decimal`` as its
unscaled two's-complement bytes), and sees the Connect schema (:func:`connect_schema`) and the JSON converter's
values (:func:`connect_payload`: bytes as base64) it already reads (``core.debezium_types``).

A converter that writes only Avro's logical types, without ``connect.name``, is read by them: ``decimal`` as
``Decimal`` (its ``scale``), ``timestamp-millis`` / ``-micros``, ``date``, ``time-millis`` / ``-micros``.

Pure: the decoding itself is fastavro's, in ``dqhash.kafka.schema_registry``.
"""

from __future__ import annotations

import base64
from typing import Any

_PRIMITIVE = {
    "boolean": "boolean",
    "int": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "bytes": "bytes",
    "string": "string",
}
#: a bare Avro logical type → the Connect (or Debezium) semantic name that means the same
_LOGICAL = {
    "decimal": "org.apache.kafka.connect.data.Decimal",
    "timestamp-millis": "org.apache.kafka.connect.data.Timestamp",
    "timestamp-micros": "io.debezium.time.MicroTimestamp",
    "date": "org.apache.kafka.connect.data.Date",
    "time-millis": "org.apache.kafka.connect.data.Time",
    "time-micros": "io.debezium.time.MicroTime",
}


class AvroSchemaError(ValueError):
    """An Avro schema that does not describe a Connect record (a type it names is nowhere defined)."""


def plain_schema(schema: Any) -> Any:
    """The schema with every ``logicalType`` removed: values decode as Connect wrote them, not as Python objects."""
    if isinstance(schema, dict):
        return {k: plain_schema(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [plain_schema(s) for s in schema]
    return schema


def connect_schema(schema: Any) -> dict[str, Any]:
    """The Connect schema, as the JSON converter writes it, of an Avro schema."""
    return _connect(schema, {}, "")


def connect_payload(value: Any) -> Any:
    """A decoded value in the JSON converter's form: bytes as base64 text, the rest as it is."""
    if isinstance(value, dict):
        return {k: connect_payload(v) for k, v in value.items()}
    if isinstance(value, list):
        return [connect_payload(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    return value


def _connect(schema: Any, names: dict[str, dict[str, Any]], namespace: str) -> dict[str, Any]:
    if isinstance(schema, str):
        return _named(schema, names, namespace)
    if isinstance(schema, list):
        return _union(schema, names, namespace)
    if not isinstance(schema, dict):
        raise AvroSchemaError(f"not an Avro schema: {str(schema)[:60]!r}")
    kind = schema.get("type")
    if kind == "record":
        return _record(schema, names, namespace)
    if kind == "array":
        return {"type": "array", "items": _connect(schema.get("items"), names, namespace)}
    if kind == "map":
        return {"type": "map", "keys": {"type": "string"}, "values": _connect(schema.get("values"), names, namespace)}
    if kind in ("enum", "fixed"):
        out = {"type": "string"} if kind == "enum" else _annotated(schema, "bytes")
        _remember(schema, out, names, namespace)
        return out
    if isinstance(kind, (dict, list)):
        return _connect(kind, names, namespace)
    if kind not in _PRIMITIVE:
        raise AvroSchemaError(f"Avro type {str(kind)[:40]!r} is not one Connect writes")
    return _annotated(schema, schema.get("connect.type") or _PRIMITIVE[kind])


def _annotated(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    """A primitive's Connect schema: its type, and the semantic name and parameters the converter kept."""
    out: dict[str, Any] = {"type": kind}
    name = schema.get("connect.name") or _LOGICAL.get(schema.get("logicalType", ""))
    if name:
        out["name"] = name
    parameters = dict(schema.get("connect.parameters") or {})
    if "scale" not in parameters and schema.get("logicalType") == "decimal":
        parameters["scale"] = str(schema.get("scale", 0))
    if parameters:
        out["parameters"] = parameters
    return out


def _record(schema: dict[str, Any], names: dict[str, dict[str, Any]], namespace: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "struct", "fields": []}
    full = _remember(schema, out, names, namespace)
    if schema.get("connect.name"):
        out["name"] = schema["connect.name"]
    inner = full.rpartition(".")[0] if full else namespace  # a field's named types default to the record's namespace
    for field in schema.get("fields") or ():
        converted = _connect(field.get("type"), names, inner)
        out["fields"].append({**converted, "field": field.get("name")})
    return out


def _remember(schema: dict[str, Any], out: dict[str, Any], names: dict[str, dict[str, Any]], namespace: str) -> str:
    """A named type kept under its full name, so a later reference by name reads the same; its full name."""
    name = schema.get("name")
    if not isinstance(name, str):
        return ""
    space = schema.get("namespace", namespace)
    full = name if "." in name or not space else f"{space}.{name}"
    names[full] = out
    out.setdefault("name", full)
    return full


def _named(name: str, names: dict[str, dict[str, Any]], namespace: str) -> dict[str, Any]:
    if name in _PRIMITIVE:
        return {"type": _PRIMITIVE[name]}
    found = names.get(name) or names.get(f"{namespace}.{name}")
    if found is None:
        raise AvroSchemaError(f"type {name!r} is referred to before it is defined")
    return found


def _union(schema: list[Any], names: dict[str, dict[str, Any]], namespace: str) -> dict[str, Any]:
    """``["null", T]``: an optional T, the one union the Connect converters write."""
    branches = [s for s in schema if s != "null"]
    if len(branches) != 1:
        raise AvroSchemaError(f"a union of {len(branches)} non-null types is not one Connect writes")
    return {**_connect(branches[0], names, namespace), "optional": "null" in schema}
