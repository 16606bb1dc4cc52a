"""The Debezium reader's progress marks: only for changes produced, to every Topic-1 partition, once a second,
and sent again while nothing moves."""

import orjson

from dqhash.agents.debezium import MARK_AGAIN_S, DebeziumReader
from dqhash.core.contracts import parse_onprem
from dqhash.core.input_records import ProgressMarks
from dqhash.core.progress import Progress
from dqhash.settings import load
from tests.e2e.test_debezium import CATALOG, TOPIC, change


def reader(tmp_path):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    return DebeziumReader(load({"DQHASH_CATALOG": str(catalog), "DQHASH_PARTITIONS": "3"}), {TOPIC: 1})


def test_marks_speak_only_for_changes_produced_and_reach_every_partition(tmp_path):
    dbz = reader(tmp_path)
    for pk, ts in ((1, 1_700_000_000_000), (2, 1_700_000_005_000)):
        key, value = change(pk, ts=ts, updated_at=1714564800123456)
        [out] = dbz.read(TOPIC, 0, pk, key, value, None)
        assert out.topic == "topic1"
    assert dbz.marks(100.0) == []  # read, not yet produced: a mark must not overtake its changes
    dbz.sent()
    outs = dbz.marks(100.0)
    assert sorted(out.partition for out in outs) == [0, 1, 2] and {out.topic for out in outs} == {"topic1"}
    assert parse_onprem(outs[0].value) == ProgressMarks(
        [Progress("inventory.customers", f"{TOPIC}:0", 1, 1_700_000_005_000)]
    )


def test_a_snapshot_read_moves_no_mark_its_time_is_a_read_not_a_commit(tmp_path):
    dbz = reader(tmp_path)
    key, value = change(1, ts=1_700_000_000_000, updated_at=1714564800123456)
    dbz.read(TOPIC, 0, 1, key, value, None)
    doc = orjson.loads(change(2, ts=1_700_000_009_000, updated_at=1714564800123456)[1])
    doc["payload"]["op"] = "r"  # read by the snapshot at 9 s: a change committed at 5 s may still follow
    [out] = dbz.read(TOPIC, 0, 2, key, orjson.dumps(doc), None)
    assert orjson.loads(out.value)["snapshot_read"] is True
    dbz.sent()
    assert orjson.loads(dbz.marks(100.0)[0].value)["progress"][0]["through"] == 1_700_000_000_000


def test_marks_go_at_most_once_a_second_and_again_while_nothing_moves(tmp_path):
    dbz = reader(tmp_path)
    key, value = change(1, ts=1_700_000_000_000, updated_at=1714564800123456)
    dbz.read(TOPIC, 0, 1, key, value, None)
    dbz.sent()
    assert dbz.marks(100.0)
    key, value = change(2, ts=1_700_000_001_000, updated_at=1714564800123456)
    dbz.read(TOPIC, 0, 2, key, value, None)
    dbz.sent()
    assert dbz.marks(100.5) == []  # moved, but within the second
    assert orjson.loads(dbz.marks(101.0)[0].value)["progress"][0]["through"] == 1_700_000_001_000
    assert dbz.marks(101.0 + MARK_AGAIN_S - 0.1) == []  # nothing moved: not yet again
    assert dbz.marks(101.0 + MARK_AGAIN_S)  # sent again, for a new owner of a Topic-1 partition


def in_transaction(value, tx):
    doc = orjson.loads(value)
    doc["payload"]["transaction"] = {"id": tx, "total_order": 1, "data_collection_order": 1}
    return orjson.dumps(doc)


def end_record(tx, count):
    payload = {"status": "END", "id": tx, "ts_ms": 1, "event_count": count,
               "data_collections": [{"data_collection": "inventory.customers", "event_count": count}]}  # fmt: skip
    return orjson.dumps({"schema": {"type": "struct", "fields": []}, "payload": payload})


def test_a_transaction_whose_changes_fell_short_is_reported_when_the_table_moves_past_it(tmp_path):
    from dqhash.core.transactions import shortfall_problems

    dbz = reader(tmp_path)
    tx_topic = "dbserver1.transaction"
    key, value = change(1, updated_at=1714564800123456)
    assert [o.topic for o in dbz.read(TOPIC, 0, 1, key, in_transaction(value, "571:100"), None)] == ["topic1"]
    assert dbz.read(tx_topic, 0, 1, b'{"id": "571:100"}', end_record("571:100", 3), None) == []  # not a dead letter
    assert dbz.read(tx_topic, 0, 2, b'{"id": "572:200"}', end_record("572:200", 1), None) == []
    key, value = change(2, updated_at=1714564800123456)
    outs = dbz.read(TOPIC, 0, 2, key, in_transaction(value, "572:200"), None)  # the table is past 571:100
    assert [o.topic for o in outs] == ["topic1", "dq-metrics"]
    record = orjson.loads(outs[1].value)
    assert (record["type"], record["table"], record["transaction"]) == (
        "completeness",
        "inventory.customers",
        "571:100",
    )
    assert (record["expected"], record["seen"], record["missing"]) == (3, 1, 2)
    [line] = shortfall_problems([outs[1].value])
    assert (
        line
        == "table inventory.customers: transaction 571:100 committed 3 change(s) to it and 1 reached dqhash (2 missing)"
    )


def test_a_refused_change_still_counts_as_arrived_for_its_transaction(tmp_path):
    from dqhash.core.debezium_types import UNAVAILABLE

    dbz = reader(tmp_path)
    key, value = change(1, name=UNAVAILABLE, updated_at=1714564800123456)  # a TOAST placeholder: UNVERIFIABLE
    [unverifiable] = dbz.read(TOPIC, 0, 1, key, in_transaction(value, "t1"), None)
    assert unverifiable.topic == "topic1" and "unverifiable" in orjson.loads(unverifiable.value)
    doc = orjson.loads(in_transaction(value, "t1"))
    doc["payload"]["source"]["ts_ms"] = "yesterday"  # no commit time: refused, UNDECODABLE
    [refused] = dbz.read(TOPIC, 0, 2, key, orjson.dumps(doc), None)
    assert refused.topic == "dq-dlq"
    dbz.read("dbserver1.transaction", 0, 1, None, end_record("t1", 2), None)
    dbz.read("dbserver1.transaction", 0, 2, None, end_record("t2", 1), None)
    key, value = change(2, updated_at=1714564800123456)
    assert [o.topic for o in dbz.read(TOPIC, 0, 2, key, in_transaction(value, "t2"), None)] == ["topic1"]
