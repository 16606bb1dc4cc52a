"""The connector's snapshot read as runs by the Debezium reader: a run per table and snapshot, its rows at their
partitions, closed by Debezium's marker or by the table's first streamed change, with its end markers and side."""

import orjson

from dqhash.agents.debezium import DebeziumReader
from dqhash.core.contracts import parse_onprem
from dqhash.core.debezium_runs import STARTED_TS, SnapshotRuns, run_of
from dqhash.core.input_records import Action, SnapshotEnd
from dqhash.core.partitioning import partition_for
from dqhash.core.table_keys import pair_key
from dqhash.settings import load
from tests.e2e.test_debezium import CATALOG, TOPIC, change

TABLE = "inventory.customers"


def reader(tmp_path, **env):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    return DebeziumReader(load({"DQHASH_CATALOG": str(catalog), "DQHASH_PARTITIONS": "3", **env}), {TOPIC: 1})


def snapshot_row(pk, mark, lsn=777, ts=1_700_000_000_000):
    return change(pk, op="r", lsn=lsn, ts=ts, snapshot=mark, updated_at=1714564800123456)


def read_all(dbz, records):
    return [out for offset, (key, value) in enumerate(records) for out in dbz.read(TOPIC, 0, offset, key, value, None)]


def test_a_tables_snapshot_rows_form_one_run_closed_by_its_last_row(tmp_path):
    dbz = reader(tmp_path)
    outs = read_all(dbz, [snapshot_row(pk, mark) for pk, mark in ((1, "first"), (2, "true"), (3, "true"),
                                                                    (4, "last_in_data_collection"))])  # fmt: skip
    snapshot_id = f"{run_of('777')}:{TABLE}"
    side = [orjson.loads(o.value) for o in outs if o.topic == "dq-snapshots"]
    assert [(s["state"], s["rows"]) for s in side] == [("running", 0), ("done", 4)] and side[0]["table"] == TABLE
    assert side[1]["scan_with"] == f"dqhash snapshot scan --snapshot-id {run_of('777')} --table {TABLE}"
    rows = [o for o in outs if o.topic == "topic1" and o.key is not None]
    for pk, out in zip((1, 2, 3, 4), rows, strict=True):
        event = parse_onprem(out.value)
        assert (event.action, event.snapshot_id, event.snapshot_read) == (Action.SNAPSHOT, snapshot_id, True)
        assert out.partition == partition_for(pair_key(TABLE, str(pk), ""), 3)
    markers = [parse_onprem(o.value) for o in outs if o.topic == "topic1" and o.key is None]
    assert sorted(m.rows for m in markers) == sorted(sum(1 for o in rows if o.partition == p) for p in range(3)) and {
        (m.snapshot_id, m.started_ts) for m in markers
    } == {(snapshot_id, STARTED_TS)}
    assert all(isinstance(m, SnapshotEnd) for m in markers) and len(markers) == 3
    assert outs.index(next(o for o in outs if o.key is None)) > outs.index(rows[-1])  # markers after every row


def test_without_debeziums_last_marks_the_tables_first_streamed_change_closes_its_run(tmp_path):
    dbz = reader(tmp_path)
    outs = read_all(dbz, [snapshot_row(1, "true"), snapshot_row(2, "true"), change(3, op="u")])
    kinds = [("marker" if o.key is None else "row") if o.topic == "topic1" else "side" for o in outs]
    assert kinds == ["side", "row", "row", "marker", "marker", "marker", "side", "row"]  # closed before the change
    assert parse_onprem(outs[-1].value).action is Action.UPDATE


def test_incremental_reads_and_runs_switched_off_are_compared_as_changes(tmp_path):
    dbz = reader(tmp_path)
    [out] = read_all(dbz, [snapshot_row(1, "incremental")])
    assert parse_onprem(out.value).action is Action.UPSERT and parse_onprem(out.value).snapshot_read
    off = reader(tmp_path, DQHASH_DEBEZIUM_SNAPSHOT_RUNS="false")
    [out] = read_all(off, [snapshot_row(1, "last_in_data_collection")])
    assert parse_onprem(out.value).action is Action.UPSERT and out.partition is None


def test_a_run_is_named_by_its_snapshots_position_and_a_new_snapshot_closes_the_old_one():
    runs, source = SnapshotRuns(), f"{TOPIC}:0"
    first, ended = runs.row(TABLE, source, "100", 0, 5)
    assert first == f"{run_of('100')}:{TABLE}" and ended is None and run_of("100") == run_of("100") != run_of("101")
    assert runs.row(TABLE, source, "100", 2, 3) == (first, None)
    assert runs.row(TABLE, f"{TOPIC}:1", "100", 1, 4) == (first, None)  # another part of the same run
    second, ended = runs.row(TABLE, source, "200", 1, 9)
    assert ended.snapshot_id == first and ended.per_partition == {0: 1, 2: 1} and ended.rows == 2
    assert (ended.first_read_ms, ended.last_read_ms, ended.source) == (3, 5, source) and second != first
    assert runs.read_before(source, 9) == [] and runs.read_before(source, 10) == [TABLE]
    assert runs.close(TABLE, source).rows == 1 and runs.close(TABLE, source) is None
    assert runs.is_open(TABLE, f"{TOPIC}:1")


def test_a_truncate_closes_the_open_run_and_is_a_run_of_no_rows_as_of_its_commit_time(tmp_path):
    dbz = reader(tmp_path)
    key, value = snapshot_row(1, "true")
    doc = orjson.loads(value)
    doc["payload"].update(op="t", before=None, after=None)
    doc["payload"]["source"].update(lsn=888, ts_ms=1_700_000_050_000)
    outs = read_all(dbz, [(key, value), (None, orjson.dumps(doc))])
    ends = [parse_onprem(o.value) for o in outs if o.topic == "topic1" and o.key is None]
    truncate_id = f"{run_of('888')}:{TABLE}"
    assert [e.snapshot_id for e in ends] == [f"{run_of('777')}:{TABLE}"] * 3 + [truncate_id] * 3
    assert {(e.rows, e.started_ts) for e in ends[3:]} == {(0, 1_700_000_050_000)}  # empty, as of its commit time
    [side] = [orjson.loads(o.value) for o in outs if o.key == f"onprem:{truncate_id}".encode()]
    assert (side["state"], side["rows"], side["truncated_at"]) == ("done", 0, "2023-11-14T22:14:10.000Z")
    dbz.sent()
    assert orjson.loads(dbz.marks(100.0)[0].value)["progress"][0]["through"] == 1_700_000_050_000  # a commit


def test_a_truncate_deletes_the_keys_its_table_changed_lately_before_its_run_ends(tmp_path):
    dbz = reader(tmp_path)
    changed = [change(pk, op="u", ts=1_700_000_000_000 + pk, updated_at=1714564800123456) for pk in (1, 2)]
    key, value = changed[0]
    doc = orjson.loads(value)
    doc["payload"].update(op="t", before=None, after=None)
    doc["payload"]["source"].update(lsn=999, ts_ms=1_700_000_010_000)
    outs = read_all(dbz, [*changed, (None, orjson.dumps(doc))])
    deletes = [parse_onprem(o.value) for o in outs[2:] if o.topic == "topic1" and o.key is not None]
    assert [(e.action, e.event_ts) for e in deletes] == [(Action.DELETE, 1_700_000_010_000)] * 2
    assert [o.key for o in outs[2:4]] == [outs[0].key, outs[1].key]  # the keys, before the run's end markers


def test_a_topic_of_several_partitions_ends_its_run_in_parts_each_naming_how_many(tmp_path):
    catalog = tmp_path / "catalog.toml"
    from tests.e2e.test_debezium import CATALOG

    catalog.write_text(CATALOG)
    dbz = DebeziumReader(load({"DQHASH_CATALOG": str(catalog), "DQHASH_PARTITIONS": "3"}), {TOPIC: 2})
    key, value = snapshot_row(1, "true")
    outs = dbz.read(TOPIC, 1, 0, key, value, None)
    key, value = change(2, op="u")
    outs = dbz.read(TOPIC, 1, 1, key, value, None)  # streaming began on partition 1: its part of the run ends
    ends = [parse_onprem(o.value) for o in outs if o.topic == "topic1" and o.key is None]
    assert {(e.part, e.parts) for e in ends} == {(f"{TOPIC}:1", 2)} and sum(e.rows for e in ends) == 1


def test_the_slot_confirming_a_time_after_a_runs_last_row_ends_it(tmp_path):
    dbz = reader(tmp_path)
    read_all(dbz, [snapshot_row(1, "true", ts=1_700_000_000_000)])
    assert dbz.quiet(f"{TOPIC}:0", 1_699_999_999_999) == []  # confirmed before its last row: a blocking snapshot
    ended = dbz.quiet(f"{TOPIC}:0", 1_700_000_000_001)
    markers = [parse_onprem(o.value) for o in ended if o.topic == "topic1"]
    assert len(markers) == 3 and sum(m.rows for m in markers) == 1 and markers[0].part is None  # one part only
    assert [orjson.loads(o.value)["state"] for o in ended if o.topic == "dq-snapshots"] == ["done"]
