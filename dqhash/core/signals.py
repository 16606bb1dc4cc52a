"""Repair through the pipeline: the repair topic's open requests as Debezium incremental-snapshot signals.

A row dqhash found differing is read again by the connector itself: an ``execute-snapshot`` signal on the
connector's Kafka signal topic, with ``additional-conditions`` selecting the failing keys, makes Debezium re-read
those rows and emit them as ``r`` changes; they reach the cloud through the replication pipeline and dqhash
through the change topics, and are verified like any change (docs/debezium.md, "Repair through the pipeline").

Pure: the repair records in, the signal records out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from dqhash.core.catalog import Catalog, TableSpec

#: CQL integer types: their key values are written as numbers in the filter, every other type as a quoted literal
_INTEGERS = frozenset({"tinyint", "smallint", "int", "bigint", "varint", "counter"})
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
#: keys selected by one signal: a filter the database reads at once, and a signal record of bounded size
KEYS_PER_SIGNAL = 500


class SignalError(ValueError):
    """A request that cannot become a signal: the message says which and why."""


def open_requests(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """table → repair action → the keys whose newest request is still open, in the order they were requested.

    A withdrawal (``repair: cancel``) closes the request it names; a key asked twice is asked once.
    """
    requests: dict[str, tuple[str, str, str]] = {}  # audit id → (table, action, pk)
    for record in records:
        if record.get("repair") == "cancel":
            requests.pop(str(record.get("withdraws")), None)
            continue
        requests[str(record.get("audit_id"))] = (
            str(record.get("table") or ""),
            str(record["repair"]),
            str(record["pk"]),
        )
    out: dict[str, dict[str, list[str]]] = {}
    for table, action, pk in requests.values():
        keys = out.setdefault(table, {}).setdefault(action, [])
        if pk not in keys:
            keys.append(pk)
    return out


def key_filter(spec: TableSpec, pks: Iterable[str]) -> str:
    """A SQL condition selecting the rows of ``pks`` (canonical PKs) by the table's key columns."""
    if not spec.key:
        raise SignalError(f"table {spec.name}: the catalog names no key columns, so no filter can select its rows")
    conditions = []
    for pk in pks:
        values = [pk] if len(spec.key) == 1 else _composite(spec, pk)
        terms = [f"{_identifier(c)} = {_literal(spec, c, v)}" for c, v in zip(spec.key, values)]
        conditions.append(terms[0] if len(terms) == 1 else "(" + " AND ".join(terms) + ")")
    if len(spec.key) == 1:  # one column: an IN list, shorter and planned as one index scan
        column = _identifier(spec.key[0])
        literals = [c.split(" = ", 1)[1] for c in conditions]
        return f"{column} IN ({', '.join(literals)})"
    return " OR ".join(conditions)


def _composite(spec: TableSpec, pk: str) -> list[str]:
    try:
        values = orjson.loads(pk)
    except orjson.JSONDecodeError:
        values = None
    if not isinstance(values, list) or len(values) != len(spec.key):
        raise SignalError(f"table {spec.name}: pk {pk[:80]!r} does not have its {len(spec.key)} key columns")
    return [str(v) for v in values]


def _identifier(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _literal(spec: TableSpec, column: str, value: str) -> str:
    if spec.types.get(column, "").lower() in _INTEGERS:
        if not _INTEGER_TEXT.fullmatch(value):
            raise SignalError(f"table {spec.name}: key {column} = {value[:40]!r} is not an integer")
        return value
    return "'" + value.replace("'", "''") + "'"


def signal_records(
    topic_prefix: str,
    catalog: Catalog,
    requests: Mapping[str, Mapping[str, list[str]]],
    per_signal: int = KEYS_PER_SIGNAL,
) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """The signal records (key: the connector's ``topic.prefix``) asking Debezium to re-read each table's keys to
    resync, ``per_signal`` keys a signal; and notes on the requests that no re-read can serve."""
    records: list[tuple[bytes, bytes]] = []
    notes: list[str] = []
    for table, actions in sorted(requests.items()):
        spec = catalog.get(table) if table else catalog.default_spec
        if spec is None:
            notes.append(
                f"table {table!r} is not in the catalog: its {sum(map(len, actions.values()))} request(s) skipped"
            )
            continue
        deletes = actions.get("delete", [])
        if deletes:
            notes.append(
                f"table {spec.name}: {len(deletes)} row(s) the cloud holds and the source does not: a re-read cannot "
                "delete them; delete them in the cloud"
            )
        keys = actions.get("resync", [])
        for start in range(0, len(keys), per_signal):
            condition = key_filter(spec, keys[start : start + per_signal])
            value = {
                "type": "execute-snapshot",
                "data": {
                    "data-collections": [spec.name],
                    "type": "incremental",
                    "additional-conditions": [{"data-collection": spec.name, "filter": condition}],
                },
            }
            records.append((topic_prefix.encode(), orjson.dumps(value)))
    return records, notes
