"""Debezium change events read as the cloud sees their rows: fixtures written from Debezium's documented formats
(the envelope and the flattened form, JSON with and without schemas), every semantic type and mode of docs/debezium.md."""

import base64
from decimal import Decimal

import orjson
import pytest

from dqhash.core.catalog import parse_catalog
from dqhash.core.contracts import parse_onprem
from dqhash.core.debezium import (
    UNDECODABLE,
    UNKNOWN_TABLE,
    UNSUPPORTED_CHANGE,
    Change,
    Tombstone,
    Truncate,
    onprem_record,
    read_change,
)
from dqhash.core.debezium_types import UNAVAILABLE, Undecodable, Unverifiable, convert
from dqhash.core.hashing import RowHasher
from dqhash.core.input_records import Rejection

CATALOG = parse_catalog(
    """
[[table]]
name = "inventory.customers"
cloud = "ks.customers"
key = ["id"]
columns = ["id", "name", "amount", "updated_at", "born", "photo"]
types = { id = "int", amount = "decimal", updated_at = "timestamp", born = "date", photo = "blob" }
"""
)
SPEC = CATALOG.get("inventory.customers")
HASHER = RowHasher("v2", SPEC.columns, SPEC.types)
T0 = 1_714_564_800_000
#: the same row as the cloud reader would present it to the hasher
CLOUD_ROW = {"id": 42, "name": "Ada", "amount": "12.5", "updated_at": "2024-05-01T12:00:00.123Z",
             "born": "2022-01-08", "photo": b"\x00\xff"}  # fmt: skip


def decimal_bytes(unscaled: int) -> str:
    return base64.b64encode(unscaled.to_bytes(8, "big", signed=True).lstrip(b"\x00") or b"\x00").decode()


AFTER_SCHEMA = {
    "type": "struct",
    "fields": [
        {"field": "id", "type": "int32"},
        {"field": "name", "type": "string"},
        {
            "field": "amount",
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "2"},
        },
        {"field": "updated_at", "type": "int64", "name": "io.debezium.time.MicroTimestamp"},
        {"field": "born", "type": "int32", "name": "io.debezium.time.Date"},
        {"field": "photo", "type": "bytes"},
    ],
}
ENVELOPE_SCHEMA = {
    "type": "struct",
    "fields": [
        {**AFTER_SCHEMA, "field": "before", "optional": True},
        {**AFTER_SCHEMA, "field": "after", "optional": True},
        {"field": "source", "type": "struct", "fields": []},
        {"field": "op", "type": "string"},
    ],
}
KEY = orjson.dumps({"schema": {"type": "struct", "fields": [{"field": "id", "type": "int32"}]}, "payload": {"id": 42}})
SOURCE = {"connector": "postgresql", "db": "shop", "schema": "inventory", "table": "customers", "lsn": 33227720,
          "txId": 767, "ts_ms": T0 + 200}  # fmt: skip


def after(**changes):
    row = {"id": 42, "name": "Ada", "amount": decimal_bytes(1250), "updated_at": (T0 + 123) * 1000 + 456,
           "born": 19000, "photo": base64.b64encode(b"\x00\xff").decode()}  # fmt: skip
    return {**row, **changes}


def envelope(op="c", row=None, before=None, schemas=True, source=None):
    payload = {"before": before, "after": row, "source": source or SOURCE, "op": op, "ts_ms": T0 + 300}
    return orjson.dumps({"schema": ENVELOPE_SCHEMA, "payload": payload} if schemas else payload)


def read(value, key=KEY, headers=None, topic="dbserver1.inventory.customers", mode="bytes"):
    return read_change(key, value, headers, topic, CATALOG, mode)


def test_a_create_in_the_envelope_hashes_exactly_as_the_cloud_row_does():
    change = read(envelope(row=after()))
    assert change == Change("inventory.customers", "c", (42,), change.row, T0 + 200, "33227720")
    assert change.row["amount"] == Decimal("12.50") and change.row["updated_at"] == T0 + 123  # µs floored to ms
    record = onprem_record(change, SPEC, HASHER)
    assert record["hash_onprem"] == HASHER.hash(CLOUD_ROW).digest and record["action"] == "CREATE"
    assert record["table"] == "inventory.customers" and record["event_ts"] == T0 + 200
    assert record["partitionColumns"] == [{"type": "PK", "value": 42}]
    again = onprem_record(read(envelope(row=after())), SPEC, HASHER)
    assert again["event_id"] == record["event_id"]  # a redelivered change is the same event
    moved = onprem_record(read(envelope(row=after(), source={**SOURCE, "lsn": 33227999})), SPEC, HASHER)
    assert moved["event_id"] != record["event_id"]


def test_update_snapshot_read_and_delete_become_their_actions():
    updated = onprem_record(read(envelope("u", after())), SPEC, HASHER)
    assert updated["action"] == "UPDATE" and "snapshot_read" not in updated
    snapshot_read = onprem_record(read(envelope("r", after())), SPEC, HASHER)
    assert snapshot_read["action"] == "UPSERT" and snapshot_read["snapshot_read"] is True  # its time is a read's
    deleted = onprem_record(read(envelope("d", None, before=after())), SPEC, HASHER)
    assert deleted["action"] == "DELETE" and "hash_onprem" not in deleted
    assert read(None) == Tombstone(KEY)  # the tombstone after a delete: nothing more to compare


def test_a_truncate_is_the_whole_table_at_its_commit_time_and_an_unknown_table_is_refused_with_why():
    assert read(envelope("t", None)) == Truncate("inventory.customers", T0 + 200, "33227720")
    flat = orjson.dumps({"__op": "t", "__table": "customers", "__schema": "inventory", "__source_ts_ms": T0 + 5})
    assert read(flat, key=None) == Truncate("inventory.customers", T0 + 5, str(T0 + 5))
    unknown = read(orjson.dumps({**orjson.loads(flat), "__op": "x"}), key=None)
    assert unknown.reason == UNDECODABLE and "'x'" in unknown.message
    other = read(envelope(row=after(), source={**SOURCE, "table": "orders"}))
    assert other.reason == UNKNOWN_TABLE and "inventory.orders" in other.message


def test_a_toast_placeholder_or_a_double_decimal_is_unverifiable_never_a_mismatch():
    toast = read(envelope(row=after(name=UNAVAILABLE)))
    assert isinstance(toast, Change) and toast.row is None and toast.key == (42,)
    assert "'name'" in toast.unverifiable and "TOAST" in toast.unverifiable
    record = onprem_record(toast, SPEC, HASHER)
    assert record["unverifiable"] == toast.unverifiable and record["action"] == "CREATE"
    assert "hash_onprem" not in record and "column_digests" not in record  # nothing to compare: never a MISMATCH
    parsed = parse_onprem(orjson.dumps(record), tables=CATALOG)
    assert parsed.hash is None and parsed.unverifiable == toast.unverifiable
    photo = read(envelope(row=after(photo=base64.b64encode(UNAVAILABLE.encode()).decode())))
    assert "'photo'" in photo.unverifiable
    with pytest.raises(Unverifiable, match="decimal.handling.mode=double"):
        convert("amount", 12.5, {"type": "double"}, "decimal")


def test_a_key_that_cannot_be_read_exactly_is_refused_it_names_no_row():
    refused = read(envelope(row=after(name="Ada")), key=orjson.dumps({"id": UNAVAILABLE}))
    assert isinstance(refused, Rejection) and refused.reason == UNDECODABLE and "key" in refused.message


def test_without_schemas_the_catalog_types_read_what_they_can():
    change = read(envelope(row={"id": 42, "name": "Ada"}, schemas=False), key=orjson.dumps({"id": 42}))
    assert change.row == {"id": 42, "name": "Ada"} and change.key == (42,)


def test_the_flattened_form_with_fields_or_headers_and_its_deletes():
    row = {**after(), "__op": "u", "__table": "customers", "__schema": "inventory", "__source_ts_ms": T0 + 200,
           "__lsn": 99}  # fmt: skip
    flat = read(orjson.dumps({"schema": {**AFTER_SCHEMA, "fields": AFTER_SCHEMA["fields"]}, "payload": row}))
    assert flat.op == "u" and flat.row["amount"] == Decimal("12.50") and flat.position == "99"
    headers = [("__op", b"c"), ("__source_ts_ms", str(T0 + 5).encode())]
    by_headers = read(orjson.dumps({"id": 42, "name": "Ada"}), key=orjson.dumps({"id": 42}), headers=headers)
    assert by_headers.table == "inventory.customers" and by_headers.op == "c" and by_headers.source_ts == T0 + 5
    deleted = read(orjson.dumps({"id": 42, "__op": "d", "__deleted": "true", "__source_ts_ms": T0}))
    assert deleted.op == "d" and deleted.row is None
    dropped = read(orjson.dumps({"id": 42, "name": "Ada"}), key=orjson.dumps({"id": 42}))
    assert dropped.reason == UNSUPPORTED_CHANGE and "add.fields" in dropped.message


#: (the value as the JSON converter writes it, its Connect schema, the column's CQL type, the value hashed)
SEMANTIC_CASES = [
    (T0, {"type": "int64", "name": "io.debezium.time.Timestamp"}, "timestamp", T0),
    (T0, {"type": "int64", "name": "org.apache.kafka.connect.data.Timestamp"}, "timestamp", T0),
    (T0 * 1000 + 999, {"type": "int64", "name": "io.debezium.time.MicroTimestamp"}, "timestamp", T0),
    (T0 * 1_000_000 + 7, {"type": "int64", "name": "io.debezium.time.NanoTimestamp"}, "timestamp", T0),
    ("2024-05-01T12:00:00.123456Z", {"type": "string", "name": "io.debezium.time.ZonedTimestamp"}, "timestamp",
     "2024-05-01T12:00:00.123456Z"),
    (19000, {"type": "int32", "name": "io.debezium.time.Date"}, "date", 19000),
    (19000, {"type": "int32", "name": "org.apache.kafka.connect.data.Date"}, "date", 19000),
    (3_600_000, {"type": "int32", "name": "io.debezium.time.Time"}, "time", 3_600_000_000_000),
    (3_600_000_001, {"type": "int64", "name": "io.debezium.time.MicroTime"}, "time", 3_600_000_001_000),
    (3_600_000_000_001, {"type": "int64", "name": "io.debezium.time.NanoTime"}, "time", 3_600_000_000_001),
    ("10:15:30.5Z", {"type": "string", "name": "io.debezium.time.ZonedTime"}, "time", "10:15:30.5"),
    (decimal_bytes(-1250), {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
                            "parameters": {"scale": "2"}}, "decimal", Decimal("-12.50")),
    ({"scale": 3, "value": decimal_bytes(1250)}, {"type": "struct", "name": "io.debezium.data.VariableScaleDecimal"},
     "decimal", Decimal("1.250")),
    ("12.50", {"type": "string"}, "decimal", "12.50"),  # decimal.handling.mode=string
    (1, {"type": "int16"}, "boolean", True),  # MySQL TINYINT(1)
    ("3f6b2a4c-1111-4222-8333-944445555666", {"type": "string", "name": "io.debezium.data.Uuid"}, "uuid",
     "3f6b2a4c-1111-4222-8333-944445555666"),
    ([T0 * 1000], {"type": "array", "items": {"type": "int64", "name": "io.debezium.time.MicroTimestamp"}},
     "list<timestamp>", [T0]),
]  # fmt: skip


@pytest.mark.parametrize(("value", "schema", "cql", "expected"), SEMANTIC_CASES)
def test_every_semantic_type_becomes_the_value_of_its_cloud_type(value, schema, cql, expected):
    assert convert("c", value, schema, cql) == expected


@pytest.mark.parametrize(
    ("text", "mode"),
    [("AP8=", "base64"), ("AP8", "base64-url-safe"), ("00ff", "hex"), ("AP8=", "bytes")],
)
def test_bytes_in_each_binary_handling_mode(text, mode):
    schema = {"type": "bytes"} if mode == "bytes" else {"type": "string"}
    assert convert("photo", text, schema, "blob", mode) == b"\x00\xff"


def test_a_value_that_does_not_read_as_its_schema_is_undecodable():
    with pytest.raises(Undecodable, match="'photo'"):
        convert("photo", "not hex", {"type": "string"}, "blob", "hex")
    bad = read(envelope(row=after(updated_at="yesterday")))
    assert bad.reason == UNDECODABLE and "'updated_at'" in bad.message
    assert read(b"{not json").reason == UNDECODABLE


def test_a_primary_key_change_is_the_delete_of_the_old_key_and_the_create_of_the_new_one():
    """Debezium writes a key change as a delete of the old key (header ``__debezium.newkey``), its tombstone, and a
    create of the new key (header ``__debezium.oldkey``): each is read for its own key, as its own action."""
    old_key = orjson.dumps({"schema": {"type": "struct", "fields": [{"field": "id", "type": "int32"}]},
                            "payload": {"id": 42}})  # fmt: skip
    new_key = orjson.dumps({"schema": {"type": "struct", "fields": [{"field": "id", "type": "int32"}]},
                            "payload": {"id": 43}})  # fmt: skip
    deleted = read(envelope("d", None, before=after()), key=old_key, headers=[("__debezium.newkey", new_key)])
    tombstone = read(None, key=old_key, headers=[("__debezium.newkey", new_key)])
    created = read(envelope("c", after(id=43)), key=new_key, headers=[("__debezium.oldkey", old_key)])
    assert (deleted.op, deleted.key) == ("d", (42,)) and tombstone == Tombstone(old_key)
    assert (created.op, created.key) == ("c", (43,))
    records = [onprem_record(change, SPEC, HASHER) for change in (deleted, created)]
    assert [(r["action"], r["partitionColumns"][0]["value"]) for r in records] == [("DELETE", 42), ("CREATE", 43)]
    assert records[1]["hash_onprem"] == HASHER.hash({**CLOUD_ROW, "id": 43}).digest
