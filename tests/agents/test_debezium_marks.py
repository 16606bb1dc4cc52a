"""The Debezium reader's progress marks: only for changes produced, to every Topic-1 partition, once a second,
and sent again while nothing moves."""

import orjson

from dqhash.agents.debezium import MARK_AGAIN_S, DebeziumReader
from dqhash.core.contracts import ProgressMarks, parse_onprem
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
        assert dbz.read(TOPIC, 0, pk, key, value, None).topic == "topic1"
    assert dbz.marks(100.0) == []  # read, not yet produced: a mark must not overtake its changes
    dbz.sent()
    outs = dbz.marks(100.0)
    assert sorted(out.partition for out in outs) == [0, 1, 2] and {out.topic for out in outs} == {"topic1"}
    assert parse_onprem(outs[0].value) == ProgressMarks(
        [Progress("inventory.customers", f"{TOPIC}:0", 1, 1_700_000_005_000)]
    )


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
