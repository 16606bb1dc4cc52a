"""The audit record is declared once (``core.audit_schema``): the Kafka record, the Cassandra tables and their
INSERTs follow it, and ``dqhash cassandra migrate`` brings an earlier version's tables to it."""

import asyncio
from types import SimpleNamespace

from dqhash.cloud.audit_sink import TABLES, CassandraAuditSink, migrate, migration, schema
from dqhash.core.audit_schema import AUDIT_FIELDS, AUDIT_NAMES
from dqhash.core.classify import on_cloud, on_deadline, on_onprem
from dqhash.core.input_records import Action, CloudHash, HashRef, OnPremEvent
from dqhash.core.outputs import audit_record
from dqhash.core.pair_state import Rules
from tests.cassandra_double import FakeSession

T0 = 1_714_564_800_000
#: the columns the audit tables had before the record's later fields reached Cassandra
EARLIER = (
    "audit_id pk event_id status reason late action hash_onprem hash_cloud event_ts cloud_ts window_start "
    "classified_at rechecks"
).split()


def a_verdict():
    state = on_onprem(None, OnPremEvent("e1", "42", Action.UPDATE, HashRef("v2", "ab" * 32), T0), T0, Rules())
    state = on_cloud(state.state, CloudHash("42", HashRef("v2", "cd" * 32), T0 + 1), T0 + 2, Rules()).state
    return on_deadline(state, T0 + 3_600_000, Rules()).verdicts[0]


def test_the_kafka_record_has_exactly_the_declared_fields_in_order():
    assert tuple(audit_record("42", a_verdict())) == AUDIT_NAMES


def test_both_cassandra_tables_carry_every_field_and_every_insert_binds_it():
    for statement in schema("ks"):
        columns = statement.split("(", 1)[1].split(", PRIMARY KEY")[0]
        declared = [column.strip() for column in columns.split(", ") if not column.startswith(("day ", "shard "))]
        assert declared == [f"{field.column} {field.cql}" for field in AUDIT_FIELDS], statement
    session = FakeSession("ks", "t", {"id": "text"}, ["id"])
    sink = CassandraAuditSink(session, "dqhash_audit", backoff_s=0.001)
    record = audit_record("42", a_verdict())
    asyncio.run(sink.write(record))
    by_pk = next(values for query, values in session.writes if "audit_by_pk" in query)
    assert len(by_pk) == len(AUDIT_FIELDS)
    bound = dict(zip(AUDIT_NAMES, by_pk))
    assert bound["differing_columns"] == [] and bound["time_to_classify_ms"] == record["time_to_classify_ms"]
    assert bound["window_end"] is not None and bound["withdraws"] is None


def test_migrate_adds_to_an_earlier_version_only_what_it_lacks_and_is_idempotent():
    tables = {name: SimpleNamespace(columns={c: None for c in EARLIER}) for name in TABLES}
    ran: list[str] = []

    def execute(statement):
        ran.append(statement)
        table, column = statement.split(".")[1].split(" ADD ")[0], statement.split(" ADD ")[1].split()[0]
        tables[table].columns[column.strip('"')] = None  # the driver's metadata names a quoted column bare

    session = SimpleNamespace(
        cluster=SimpleNamespace(metadata=SimpleNamespace(keyspaces={"audit": SimpleNamespace(tables=tables)})),
        execute=execute,
    )
    first = migrate(session, "audit")
    added = [f for f in AUDIT_NAMES if f not in EARLIER]
    assert first == [
        f"ALTER TABLE audit.{t} ADD {f.column} {f.cql}" for t in TABLES for f in AUDIT_FIELDS if f.name in added
    ]
    assert 'ADD "table" text' in first[0]  # a reserved word, quoted
    assert "table" in added and "differing_columns" in added and "snapshot_id" in added and "withdraws" in added
    assert migrate(session, "audit") == [] and migration("audit", {t: AUDIT_NAMES for t in TABLES}) == []
