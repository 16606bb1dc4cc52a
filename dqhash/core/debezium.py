"""Debezium change events → the on-prem records of the Topic-1 contract (docs/debezium.md).

Pure: a change topic's record (key, value, headers, topic name) becomes a :class:`Change` (its catalog table, op,
key values, after image as the cloud sees it, commit time, source position), then the Topic-1 record of that
change, hashed by the table's own rules. Both shapes are read: Debezium's envelope (``before``, ``after``,
``source``, ``op``) and the flattened form of the ExtractNewRecordState transform (the row with ``__op``,
``__deleted``, ``__source_ts_ms``, ``__table`` as fields or headers), in JSON with or without schemas, or in Avro
through the Schema Registry (decoded by the caller into the same form: ``core.avro_connect``).

- The table is ``source.schema`` (else ``source.db``) ``.`` ``source.table``: the catalog's on-prem name.
- The event id is derived from the source position (LSN, SCN, binlog file and position), the table and the
  key, so a redelivered change is the same event, and a change seen twice is counted once.
- ``c``, ``u`` and ``r`` (a snapshot read, marked ``snapshot_read``: its time is when it was read) are compared; ``d``
  is a DELETE; a tombstone is recognised (the delete before it already said it); ``t`` is a :class:`Truncate` of
  the whole table; the flattened form's ``drop`` mode is refused with why.
- A value that cannot be verified exactly (``debezium_types.Unverifiable``) makes the change an ``UNVERIFIABLE``
  Topic-1 record naming the column and why, with no hash: its verdict is UNVERIFIABLE, never a MISMATCH.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from dqhash.core.catalog import Catalog, TableSpec
from dqhash.core.debezium_types import Undecodable, Unverifiable, convert
from dqhash.core.hashing import RowHasher
from dqhash.core.input_records import Rejection
from dqhash.core.jsontext import JsonTextError, loads_exact
from dqhash.core.transactions import TransactionEvent, read_transaction

#: why a change is refused (the DLQ reason; ``input_records.Reason`` holds the Topic-1 ones)
UNDECODABLE = "UNDECODABLE"
UNKNOWN_TABLE = "UNKNOWN_TABLE"
UNSUPPORTED_CHANGE = "UNSUPPORTED_CHANGE"
#: Debezium's op codes and the Topic-1 action each becomes
ACTIONS = {"c": "CREATE", "u": "UPDATE", "r": "UPSERT", "d": "DELETE"}
#: the source fields that name a change's position, the first present wins (PostgreSQL, Oracle, SQL Server, MySQL)
_POSITION_FIELDS = ("lsn", "scn", "commit_lsn", "change_lsn", "pos")


class Change(NamedTuple):
    table: str
    op: str
    key: tuple[Any, ...]  # key values, in the catalog's key order
    row: dict[str, Any] | None  # the after image, converted for the cloud's types; None for a delete
    source_ts: int  # commit time, epoch ms
    position: str
    transaction: str | None = None  # the transaction's id, with provide.transaction.metadata (core.transactions)
    #: why the after image cannot be hashed exactly (``debezium_types.Unverifiable``): row is None, and the change
    #: is sent as an UNVERIFIABLE Topic-1 record, which replaces the row's older version without being compared
    unverifiable: str | None = None
    #: ``source.snapshot`` of a snapshot read (``true``, ``last_in_data_collection``, ``incremental``...), else None
    snapshot: str | None = None


class Truncate(NamedTuple):
    """A TRUNCATE (op ``t``): every row of the table gone at ``source_ts``; no key, and nothing to hash."""

    table: str
    source_ts: int  # commit time, epoch ms
    position: str
    transaction: str | None = None


class Tombstone(NamedTuple):
    """The null-valued record Debezium writes after a delete, for log compaction: nothing to compare."""

    key: bytes | None


class Refusal(Rejection):
    """A change refused, with the table it belongs to when that is known (its dead letter's ``dq.table``), and
    its transaction (it reached dqhash: it counts towards its transaction's completeness)."""

    table: str | None
    transaction: str | None


def refuse(reason: str, message: str, table: str | None = None) -> Refusal:
    refusal = Refusal(reason, message)  # type: ignore[arg-type]
    refusal.table = table
    refusal.transaction = None
    return refusal


def read_change(
    key: bytes | dict[str, Any] | None,
    value: bytes | dict[str, Any] | None,
    headers: Sequence[tuple[str, bytes]] | None,
    topic: str,
    catalog: Catalog,
    binary_mode: str = "bytes",
) -> Change | Truncate | Tombstone | TransactionEvent | Rejection:
    """One record of a Debezium change topic as a :class:`Change`, a :class:`Truncate`, a :class:`Tombstone`, or
    why it is refused; a
    record of the connector's transaction topic as its :class:`TransactionEvent`. A key or value is JSON bytes,
    or a document already decoded (an Avro record read as the JSON converter writes it: ``core.avro_connect``)."""
    if value is None or value == b"":
        return Tombstone(key if isinstance(key, bytes) else None)
    try:
        doc, schema = _payload(_document(value))
        key_doc, key_schema = _payload(_document(key)) if key else (None, None)
    except JsonTextError as exc:
        return refuse(UNDECODABLE, f"not JSON: {exc}")
    if not isinstance(doc, dict):
        return refuse(UNDECODABLE, "a change event is a JSON object")
    transaction = read_transaction(doc)
    if transaction is not None:  # the connector's transaction topic: a BEGIN or END, no change
        return transaction
    found = dict(headers or ())
    if "op" in doc and ("after" in doc or "before" in doc):
        return _envelope(doc, schema, key_doc, key_schema, catalog, binary_mode)
    return _flattened(doc, schema, key_doc, key_schema, found, topic, catalog, binary_mode)


def _document(raw: Any) -> Any:
    return _loads(bytes(raw)) if isinstance(raw, (bytes, bytearray, memoryview)) else raw


def _loads(raw: bytes) -> Any:
    """orjson, and the exact parser where orjson cannot keep every digit (an integer beyond 64 bits) or refuses."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return loads_exact(raw)


def _payload(doc: Any) -> tuple[Any, dict[str, Any] | None]:
    """(payload, its schema) of a JSON converter record with schemas, or (the record, None) without."""
    if isinstance(doc, dict) and set(doc) == {"schema", "payload"}:
        return doc["payload"], doc["schema"]
    return doc, None


def _fields(schema: dict[str, Any] | None, name: str | None = None) -> dict[str, dict[str, Any]]:
    """Field name → its schema, of a struct schema (or of its field ``name``, a struct itself)."""
    if schema is None:
        return {}
    if name is not None:
        schema = next((f for f in schema.get("fields", ()) if f.get("field") == name), None)
        if schema is None:
            return {}
    return {f["field"]: f for f in schema.get("fields", ()) if "field" in f}


def _envelope(
    doc: dict[str, Any],
    schema: dict[str, Any] | None,
    key_doc: Any,
    key_schema: dict[str, Any] | None,
    catalog: Catalog,
    binary_mode: str,
) -> Change | Truncate | Rejection:
    op, source = doc.get("op"), doc.get("source") or {}
    if op == "t":
        return _truncate(source, catalog, doc.get("ts_ms"), doc.get("transaction"))
    if op not in ACTIONS:
        return refuse(UNDECODABLE, f"unknown op {str(op)[:8]!r}; Debezium's are c, u, d, r, t")
    spec = _spec(catalog, _table_name(source))
    if isinstance(spec, Rejection):
        return spec
    image = doc.get("before") if op == "d" else doc.get("after")
    side = "before" if op == "d" else "after"
    if not isinstance(image, dict) and op != "d":
        return refuse(UNDECODABLE, f"a {op!r} change without its after image")
    made = _change(spec, op, image, _fields(schema, side), key_doc, key_schema, source, doc.get("ts_ms"), binary_mode)
    transaction = doc.get("transaction")
    if not isinstance(transaction, dict) or not isinstance(transaction.get("id"), str):
        return made
    if isinstance(made, Change):
        return made._replace(transaction=transaction["id"])
    if isinstance(made, Refusal):
        made.transaction = transaction["id"]
    return made


def _truncate(source: Mapping[str, Any], catalog: Catalog, envelope_ts: Any, transaction: Any) -> Truncate | Rejection:
    spec = _spec(catalog, _table_name(source))
    if isinstance(spec, Rejection):
        return spec
    timed = _timed(spec, "t", (), None, source, envelope_ts)
    if isinstance(timed, Rejection):
        return timed
    tx = transaction.get("id") if isinstance(transaction, dict) and isinstance(transaction.get("id"), str) else None
    return Truncate(spec.name, timed.source_ts, timed.position, tx)


def _flattened(
    doc: dict[str, Any],
    schema: dict[str, Any] | None,
    key_doc: Any,
    key_schema: dict[str, Any] | None,
    headers: Mapping[str, bytes],
    topic: str,
    catalog: Catalog,
    binary_mode: str,
) -> Change | Truncate | Rejection:
    """ExtractNewRecordState's row, its metadata in ``__`` fields (``add.fields``) or headers (``add.headers``)."""

    def meta(name: str) -> Any:
        if f"__{name}" in doc:
            return doc[f"__{name}"]
        raw = headers.get(f"__{name}")
        return raw.decode() if raw is not None else None

    op = meta("op")
    if op is None:
        return refuse(
            UNSUPPORTED_CHANGE,
            "a flattened change without __op: set the transform's add.fields=op,table,source.ts_ms (or add.headers) "
            "so deletes and snapshot reads can be told apart",
        )
    deleted = str(meta("deleted") or "false").lower() == "true"
    source = {"schema": meta("schema"), "db": meta("db"), "table": meta("table"), "ts_ms": meta("source_ts_ms"),
              "snapshot": meta("source_snapshot") or meta("snapshot")}  # fmt: skip
    for field in _POSITION_FIELDS:
        source[field] = meta(field)
    if not source["table"]:
        source["schema"], _, source["table"] = topic.rpartition(".")
        source["schema"] = source["schema"].rpartition(".")[2]
    spec = _spec(catalog, _table_name(source))
    if isinstance(spec, Rejection):
        return spec
    if op == "t":
        return _truncate(source, catalog, None, None)
    if op not in ACTIONS:
        return refuse(UNDECODABLE, f"unknown __op {str(op)[:8]!r}; Debezium's are c, u, d, r, t", spec.name)
    row = {k: v for k, v in doc.items() if not k.startswith("__")}
    op = "d" if deleted else op
    return _change(spec, op, row, _fields(schema), key_doc, key_schema, source, None, binary_mode)


def _table_name(source: Mapping[str, Any]) -> str:
    return f"{source.get('schema') or source.get('db')}.{source.get('table')}"


def _spec(catalog: Catalog, name: str) -> TableSpec | Rejection:
    spec = catalog.get(name)
    if spec is None:
        return refuse(
            UNKNOWN_TABLE, f"table {name!r} (from source.schema/db and source.table) is not in the catalog", name
        )
    return spec


def _change(
    spec: TableSpec,
    op: str,
    image: dict[str, Any] | None,
    schemas: dict[str, dict[str, Any]],
    key_doc: Any,
    key_schema: dict[str, Any] | None,
    source: Mapping[str, Any],
    envelope_ts: Any,
    binary_mode: str,
) -> Change | Rejection:
    key_row = key_doc if isinstance(key_doc, dict) else (image or {})
    key_fields = _fields(key_schema) or schemas
    columns = spec.key or tuple(key_row)
    missing = [c for c in columns if key_row.get(c) is None]
    if missing or not columns:
        return refuse(UNDECODABLE, f"table {spec.name}: no value for key column(s) {missing or 'any'}", spec.name)
    unverifiable = None
    try:
        key = tuple(
            _key_value(convert(c, key_row[c], key_fields.get(c), spec.types.get(c), binary_mode)) for c in columns
        )
    except (Unverifiable, Undecodable) as exc:  # a key that cannot be read exactly names no row
        return refuse(UNDECODABLE, f"table {spec.name}: key: {exc}", spec.name)
    try:
        row = _row(spec, image, schemas, binary_mode) if op != "d" else None
    except Unverifiable as exc:
        row, unverifiable = None, str(exc)
    except Undecodable as exc:
        return refuse(UNDECODABLE, f"table {spec.name}: {exc}", spec.name)
    made = _timed(spec, op, key, row, source, envelope_ts)
    return made._replace(unverifiable=unverifiable) if unverifiable and isinstance(made, Change) else made


def _row(
    spec: TableSpec, image: dict[str, Any] | None, schemas: dict[str, dict[str, Any]], mode: str
) -> dict[str, Any] | None:
    """The after image, each value converted for its column's cloud type."""
    if image is None:
        return None
    return {c: convert(c, v, schemas.get(c), spec.types.get(c), mode) for c, v in image.items()}


def _timed(
    spec: TableSpec,
    op: str,
    key: tuple[Any, ...],
    row: dict[str, Any] | None,
    source: Mapping[str, Any],
    envelope_ts: Any,
) -> Change | Rejection:
    """The change with its commit time and source position."""
    ts = source.get("ts_ms") if source.get("ts_ms") is not None else envelope_ts
    if type(ts) is str and ts.isdigit():
        ts = int(ts)
    if type(ts) is not int:
        return refuse(UNDECODABLE, f"table {spec.name}: no commit time (source.ts_ms)", spec.name)
    position = next((str(source[f]) for f in _POSITION_FIELDS if source.get(f) is not None), str(ts))
    marked = source.get("snapshot")
    snapshot = str(marked).lower() if op == "r" and marked is not None else None
    return Change(spec.name, op, key, row, ts, position, snapshot=snapshot)


def _key_value(value: Any) -> str | int:
    """A key value as the canonical PK takes it: integers and text as they are, anything else as its text."""
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else str(value)


def onprem_record(
    change: Change, spec: TableSpec, hasher: RowHasher, snapshot_id: str | None = None
) -> dict[str, Any] | Rejection:
    """The Topic-1 record of a change (docs/contracts.md), hashed by the table's rules; with ``snapshot_id``, a
    row of that snapshot run (``core.debezium_runs``)."""
    identity = f"{change.table}\x1f{change.position}\x1f{change.op}\x1f{list(change.key)}"
    record: dict[str, Any] = {
        "event_id": "dbz-" + hashlib.sha256(identity.encode()).hexdigest()[:32],
        "table": change.table,
        "partitionColumns": [{"type": "PK", "value": v} for v in change.key],
        "event_ts": change.source_ts,
        "action": ACTIONS[change.op],
    }
    if change.op == "r":  # read by the connector's snapshot: its time is the read's, not a commit's
        record["snapshot_read"] = True
    if snapshot_id is not None:
        record["action"], record["snapshot_id"] = "SNAPSHOT", snapshot_id
    if change.unverifiable is not None:
        record["unverifiable"] = change.unverifiable
    elif change.row is not None:
        try:
            digest, digests = hasher.hash_and_digests(change.row)
        except ValueError as exc:  # a value the spec cannot encode for its declared type
            return refuse(UNDECODABLE, f"table {change.table}: {exc}", change.table)
        record["hash_onprem"] = digest.digest
        record["hash_version"] = digest.version
        record["column_digests"] = digests
    return record
