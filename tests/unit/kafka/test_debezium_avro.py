"""Debezium change topics in Avro (Confluent's wire format, the AvroConverter's schemas): each record reads back to
the same change, hash and key as the JSON converter's record of the same row. The Avro schemas are written as
Confluent's AvroData writes Debezium's Connect schemas (``connect.name``, ``connect.parameters``, optional fields
as ``["null", T]``, the after image a reference to the before image's named record)."""

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dqhash.core.avro_connect import connect_schema, plain_schema
from dqhash.core.debezium import Change, onprem_record, read_change
from dqhash.core.debezium_types import convert
from dqhash.core.input_records import Reason, Rejection
from dqhash.core.transactions import TransactionEvent
from dqhash.kafka.schema_registry import SchemaRegistry, _parse
from tests.registry_double import avro
from tests.unit.core.test_debezium import CATALOG, CLOUD_ROW, HASHER, SEMANTIC_CASES, SPEC, T0, after, envelope, read

NS = "dbserver1.inventory.customers"


def optional(kind):
    return {"type": ["null", kind], "default": None}


VALUE = {
    "type": "record",
    "name": "Value",
    "fields": [
        {"name": "id", "type": "int"},
        {"name": "name", **optional("string")},
        {
            "name": "amount",
            **optional(
                {
                    "type": "bytes",
                    "scale": 2,
                    "precision": 10,
                    "connect.version": 1,
                    "connect.parameters": {"scale": "2", "connect.decimal.precision": "10"},
                    "connect.name": "org.apache.kafka.connect.data.Decimal",
                    "logicalType": "decimal",
                }
            ),
        },  # fmt: skip
        {
            "name": "updated_at",
            **optional({"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.MicroTimestamp"}),
        },  # fmt: skip
        {"name": "born", **optional({"type": "int", "connect.version": 1, "connect.name": "io.debezium.time.Date"})},
        {"name": "photo", **optional("bytes")},
    ],
    "connect.name": f"{NS}.Value",
}
SOURCE = {
    "type": "record",
    "name": "Source",
    "namespace": "io.debezium.connector.postgresql",
    "fields": [
        {"name": "connector", "type": "string"},
        {"name": "ts_ms", "type": "long"},
        {
            "name": "snapshot",
            "type": [
                {
                    "type": "string",
                    "connect.version": 1,
                    "connect.name": "io.debezium.data.Enum",
                    "connect.parameters": {"allowed": "true,last,false,incremental"},
                },
                "null",
            ],
            "default": "false",
        },  # fmt: skip
        {"name": "db", "type": "string"},
        {"name": "schema", "type": "string"},
        {"name": "table", "type": "string"},
        {"name": "txId", **optional("long")},
        {"name": "lsn", **optional("long")},
    ],
    "connect.name": "io.debezium.connector.postgresql.Source",
}
BLOCK = {"type": "record", "name": "block", "namespace": "event", "connect.name": "event.block",
         "fields": [{"name": "id", "type": "string"}, {"name": "total_order", "type": "long"},
                    {"name": "data_collection_order", "type": "long"}]}  # fmt: skip
ENVELOPE = {
    "type": "record",
    "name": "Envelope",
    "namespace": NS,
    "fields": [
        {"name": "before", **optional(VALUE)},
        {"name": "after", **optional("Value")},  # a reference to the record defined under "before"
        {"name": "source", "type": SOURCE},
        {"name": "op", "type": "string"},
        {"name": "ts_ms", **optional("long")},
        {"name": "transaction", **optional(BLOCK)},
    ],
    "connect.name": f"{NS}.Envelope",
}
KEY = {"type": "record", "name": "Key", "namespace": NS, "fields": [{"name": "id", "type": "int"}],
       "connect.name": f"{NS}.Key"}  # fmt: skip
SOURCE_ROW = {"connector": "postgresql", "ts_ms": T0 + 200, "snapshot": "false", "db": "shop", "schema": "inventory",
              "table": "customers", "txId": 767, "lsn": 33227720}  # fmt: skip
ROW = {"id": 42, "name": "Ada", "amount": Decimal("12.50"), "updated_at": (T0 + 123) * 1000 + 456, "born": 19000,
       "photo": b"\x00\xff"}  # fmt: skip


def registry(**schemas):
    found = SchemaRegistry("http://127.0.0.1:9")  # never asked: the schemas are already fetched
    for schema_id, schema in schemas.items():
        found.schemas[int(schema_id[1:])] = _parse({"schema": json.dumps(schema)})
    return found


def avro_change(op="c", row=ROW, transaction=None, **source):
    value = {"before": None, "after": row, "source": {**SOURCE_ROW, **source}, "op": op, "ts_ms": T0 + 300,
             "transaction": transaction}  # fmt: skip
    return avro(2, KEY, {"id": 42}), avro(1, ENVELOPE, value)


REGISTRY = registry(s1=ENVELOPE, s2=KEY)


def read_avro(key, value, reg=REGISTRY):
    return read_change(reg.connect_record(key), reg.connect_record(value), None, f"{NS}", CATALOG)


def test_an_avro_change_is_the_same_change_and_hash_as_its_json_record():
    change = read_avro(*avro_change())
    assert change == read(envelope(row=after()))  # the JSON converter's record of the same row
    assert change == Change("inventory.customers", "c", (42,), change.row, T0 + 200, "33227720")
    assert change.row["amount"] == Decimal("12.50") and change.row["updated_at"] == T0 + 123
    record = onprem_record(change, SPEC, HASHER)
    assert record["hash_onprem"] == HASHER.hash(CLOUD_ROW).digest and record["partitionColumns"][0]["value"] == 42


def test_connect_types_and_bare_avro_logical_types_mean_what_their_connect_names_say():
    row = {"type": "record", "name": "Value", "namespace": "x", "fields": [
        {"name": "id", "type": "int"},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 3}},
        {"name": "updated_at", "type": {"type": "long", "logicalType": "timestamp-millis",
                                        "connect.name": "org.apache.kafka.connect.data.Timestamp"}},
        {"name": "born", "type": {"type": "int", "logicalType": "date"}},
        {"name": "flag", "type": {"type": "int", "connect.type": "int16"}},
    ]}  # fmt: skip
    schema = connect_schema(row)
    fields = {f["field"]: f for f in schema["fields"]}
    assert fields["amount"] == {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
                                "parameters": {"scale": "3"}, "field": "amount"}  # fmt: skip
    assert fields["updated_at"]["name"] == "org.apache.kafka.connect.data.Timestamp"
    assert fields["born"]["name"] == "org.apache.kafka.connect.data.Date" and fields["flag"]["type"] == "int16"
    assert "logicalType" not in json.dumps(plain_schema(row))
    reg = registry(s7=row)
    value = avro(7, row, {"id": 1, "amount": Decimal("1.250"), "updated_at": datetime.fromtimestamp(T0 / 1000, UTC),
                            "born": datetime(2022, 1, 8).date(), "flag": 1})  # fmt: skip
    decoded = reg.connect_record(value)
    assert decoded["payload"]["updated_at"] == T0 and decoded["payload"]["born"] == 19000  # as Connect wrote them
    assert decoded["payload"]["amount"] == "BOI="  # the unscaled 1250, base64, as the JSON converter writes it


def test_an_avro_delete_tombstone_and_transaction_end_read_as_their_json_records():
    key, _ = avro_change("d", row=None)
    deleted = read_avro(key, avro(1, ENVELOPE, {"before": ROW, "after": None, "source": SOURCE_ROW, "op": "d",
                                                  "ts_ms": T0 + 300, "transaction": None}))  # fmt: skip
    assert deleted.op == "d" and deleted.key == (42,) and deleted.row is None
    assert read_change(REGISTRY.connect_record(key), None, None, NS, CATALOG).key is None  # a tombstone
    end = {"type": "record", "name": "TransactionMetadataValue", "namespace": "io.debezium.connector.common",
           "fields": [{"name": "status", "type": "string"}, {"name": "id", "type": "string"},
                      {"name": "event_count", **optional("long")},
                      {"name": "data_collections", **optional({"type": "array", "items": {
                          "type": "record", "name": "ConnectDefault", "namespace": "io.confluent.connect.avro",
                          "fields": [{"name": "data_collection", "type": "string"},
                                     {"name": "event_count", "type": "long"}]}})},
                      {"name": "ts_ms", "type": "long"}]}  # fmt: skip
    reg = registry(s3=end)
    record = avro(3, end, {"status": "END", "id": "571:100", "event_count": 2, "ts_ms": T0,
                             "data_collections": [{"data_collection": "inventory.customers", "event_count": 2}]})  # fmt: skip
    event = read_change(None, reg.connect_record(record), None, "dbserver1.transaction", CATALOG)
    assert isinstance(event, TransactionEvent) and event.counts == {"inventory.customers": 2}


def test_an_avro_record_the_registry_cannot_read_is_refused_with_why():
    key, value = avro_change()
    unknown = SchemaRegistry("http://127.0.0.1:9")
    unknown.failed[1] = ("SCHEMA_NOT_FOUND", "the registry has no schema id 1", 0.0)
    assert unknown.connect_record(value) == Rejection(Reason.SCHEMA_NOT_FOUND, "the registry has no schema id 1")
    broken = REGISTRY.connect_record(value[:9])  # the body cut short
    assert isinstance(broken, Rejection) and broken.reason is Reason.UNDECODABLE and "schema id 1" in broken.message
    dangling = registry(s4={"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]})
    dangling.schemas[4].source = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "Missing"}]}
    refused = dangling.connect_record(avro(4, {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]},
                                             {"a": 1}))  # fmt: skip
    assert isinstance(refused, Rejection) and "Missing" in refused.message


_AVRO_PRIMITIVE = {"int16": "int", "int32": "int", "int64": "long", "string": "string", "bytes": "bytes"}


def avro_type(connect):
    """A Connect schema as Confluent's AvroData writes it: a primitive with ``connect.*`` annotations, a record for
    a struct, an array of its items."""
    if connect["type"] == "array":
        return {"type": "array", "items": avro_type(connect["items"])}
    if connect["type"] == "struct":  # VariableScaleDecimal
        return {"type": "record", "name": "VariableScaleDecimal", "namespace": "io.debezium.data",
                "connect.name": connect["name"],
                "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}]}  # fmt: skip
    found = {"type": _AVRO_PRIMITIVE[connect["type"]]}
    if connect["type"] == "int16":
        found["connect.type"] = "int16"
    if "name" in connect:
        found["connect.name"] = connect["name"]
    if "parameters" in connect:
        found |= {"connect.parameters": connect["parameters"], "logicalType": "decimal",
                  "scale": int(connect["parameters"]["scale"]), "precision": 20}  # fmt: skip
    return found


def avro_value(value, connect):
    """The value Connect hands the Avro converter: bytes as bytes, not base64."""
    if connect["type"] == "bytes":
        unscaled = int.from_bytes(base64.b64decode(value), "big", signed=True)
        return Decimal(unscaled).scaleb(-int(connect["parameters"]["scale"]))  # fastavro writes a Decimal's bytes
    if connect["type"] == "struct":
        return {"scale": value["scale"], "value": base64.b64decode(value["value"])}
    return value


@pytest.mark.parametrize(("value", "schema", "cql", "expected"), SEMANTIC_CASES)
def test_every_semantic_type_in_avro_becomes_the_same_value_as_in_json(value, schema, cql, expected):
    record = {"type": "record", "name": "Value", "namespace": "t", "fields": [{"name": "c", "type": avro_type(schema)}]}
    reg = registry(s9=record)
    decoded = reg.connect_record(avro(9, record, {"c": avro_value(value, schema)}))
    [field] = decoded["schema"]["fields"]
    assert convert("c", decoded["payload"]["c"], field, cql) == expected


def test_a_toast_placeholder_in_avro_is_unverifiable_in_a_text_or_a_bytes_column():
    from dqhash.core.debezium_types import UNAVAILABLE, Unverifiable

    record = {"type": "record", "name": "Value", "namespace": "t",
              "fields": [{"name": "name", "type": "string"}, {"name": "photo", "type": "bytes"}]}  # fmt: skip
    decoded = registry(s10=record).connect_record(
        avro(10, record, {"name": UNAVAILABLE, "photo": UNAVAILABLE.encode()})
    )
    fields = {f["field"]: f for f in decoded["schema"]["fields"]}
    for column, cql in (("name", "text"), ("photo", "blob")):
        with pytest.raises(Unverifiable, match="TOAST"):
            convert(column, decoded["payload"][column], fields[column], cql)
