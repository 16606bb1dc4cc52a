"""A record's primary key and its JSON object, read exactly: the canonical key text both sides agree on,
bounded and printable, and no key silently lost to a repeated field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from dqhash.core.input_records import Reason, Rejection
from dqhash.core.jsontext import JsonTextError, loads_exact


def key_text(value: Any) -> str | int | None:
    """A key column's value as ``canonical_pk`` takes it, from a database's typed value (a UUID, a date, a
    decimal: their text, as both sides' drivers print it); None for a value no key can hold (a float, a
    boolean, a collection). Aware timestamps must be made naive UTC first, as Cassandra's driver returns them."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, (UUID, Decimal, date, time)):
        return str(value)
    return None


def canonical_pk(values: Sequence[str | int]) -> str:
    """The one string that identifies a row, identical on both sides.

    One key column: its text (an integer in decimal). Several (composite key):
    the JSON array of their texts in key-column order, e.g. ``["eu","42"]``.
    A single text key that itself looks like such an array cannot collide with
    a composite key of the same table, since a table's key shape is fixed.
    """
    texts = [v if isinstance(v, str) else str(v) for v in values]
    if len(texts) == 1:
        return texts[0]
    return orjson.dumps(texts).decode()


def load_object(raw: bytes | None) -> dict[str, Any] | Rejection:
    if raw is None or raw == b"":
        return Rejection(Reason.EMPTY_VALUE, "record has no value (tombstone or empty message)")
    try:
        doc = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError) as exc:
        return Rejection(Reason.INVALID_JSON, f"not valid JSON: {exc}")
    if isinstance(doc, dict) and _may_repeat_a_key(raw, doc):
        return _exact(raw)  # it decides: a duplicate key is refused, a false alarm parses as usual
    if not isinstance(doc, dict):
        return Rejection(Reason.NOT_AN_OBJECT, f"expected a JSON object, got {type(doc).__name__}")
    return doc


def pk_from_partition_columns(columns: Any) -> str | Rejection:
    if type(columns) is list and len(columns) == 1:  # the usual form, one PK column of text: its text
        (column,) = columns
        if type(column) is dict and column.get("type") == "PK":
            value = column.get("value")
            if type(value) is str and value:
                return value
    if columns is None:
        return Rejection(Reason.MISSING_PK, "missing partitionColumns")
    if not isinstance(columns, list):
        return Rejection(Reason.INVALID_FIELD_TYPE, "partitionColumns must be an array")
    values = []
    for column in columns:
        if not isinstance(column, dict):
            return Rejection(Reason.INVALID_FIELD_TYPE, "partitionColumns entries must be objects")
        kind = column.get("type")
        if isinstance(kind, str) and kind.upper() == "PK":
            values.append(column.get("value"))
    if not values:
        return Rejection(Reason.MISSING_PK, "no partitionColumns entry of type PK")
    return _checked_pk(values)


def pk_from_value(value: Any) -> str | Rejection:
    if type(value) is str and value:
        return value  # the usual form, one key column of text: canonical_pk would return it as it is
    if isinstance(value, list):
        if not value:
            return Rejection(Reason.MISSING_PK, "pk is an empty array")
        return _checked_pk(value)
    return _checked_pk([value])


#: orjson keeps the last of two equal keys without a word, which would classify a record whose meaning is
#: ambiguous (which hash?). Every key is written ``"name":``, so a record with more of those in its bytes
#: than keys in its parsed objects lost one (or holds the sequence inside a string, or spaces before a
#: colon): the exact parser then decides, refusing a real duplicate. Counting the usual nested objects by
#: name keeps this to one bytes scan on the usual path.
def _may_repeat_a_key(raw: bytes, doc: dict[str, Any]) -> bool:
    keys = len(doc)
    columns = doc.get("partitionColumns")
    if type(columns) is list:
        keys += sum(len(column) for column in columns if type(column) is dict)
    digests = doc.get("column_digests")
    if type(digests) is dict:
        keys += len(digests)
    return raw.count(b'":') != keys


#: orjson reads an integer beyond 64 bits as a double; a PK must keep every digit. A PK value that comes
#: back as a plain float sends the record to the exact parser, which keeps integers whole (and leaves a
#: real fraction a float, refused below). Only such records pay for the second parse.
_INEXACT = Rejection(Reason.INVALID_PK, "PK value read inexactly")


def _exact(raw: bytes | None) -> dict[str, Any] | Rejection:
    try:
        doc = loads_exact(raw or b"")
    except JsonTextError as exc:  # stricter than orjson: a duplicate key, say
        return Rejection(Reason.INVALID_JSON, str(exc))
    return doc if isinstance(doc, dict) else Rejection(Reason.NOT_AN_OBJECT, "expected a JSON object")


#: A PK is a table key, a partitioning key and a field of every output record: bounded, and printable.
MAX_PK_BYTES = 1024
CONTROL = re.compile("[\x00-\x1f\x7f]")


def _checked_pk(values: list[Any]) -> str | Rejection:
    if any(type(value) is float for value in values):
        return _INEXACT
    return _checked_pk_values(values)


def read_pk(
    raw: bytes | None, doc: dict[str, Any], field: str, extract: Callable[[Any], str | Rejection]
) -> str | Rejection:
    """The canonical PK from ``doc[field]``: re-read exactly if orjson rounded an integer, then bounded."""
    pk = extract(doc.get(field))
    if pk is _INEXACT:
        exact = _exact(raw)
        pk = exact if isinstance(exact, Rejection) else extract(exact.get(field))
    return pk if isinstance(pk, Rejection) else _bounded_pk(pk)


def _bounded_pk(pk: str) -> str | Rejection:
    if len(pk) > MAX_PK_BYTES // 4 and len(pk.encode("utf-8", "surrogatepass")) > MAX_PK_BYTES:
        return Rejection(Reason.INVALID_PK, f"PK longer than {MAX_PK_BYTES} bytes: {pk[:32]!r}...")
    if CONTROL.search(pk):
        return Rejection(Reason.INVALID_PK, f"PK holds a control character: {pk[:64]!r}")
    return pk


def _checked_pk_values(values: list[Any]) -> str | Rejection:
    for value in values:
        if value is None or value == "":
            return Rejection(Reason.MISSING_PK, "PK value is null or empty")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return Rejection(
                Reason.INVALID_PK,
                f"PK value must be a string or an integer, got {'float' if isinstance(value, float) else type(value).__name__}",
            )
    return canonical_pk(values)
