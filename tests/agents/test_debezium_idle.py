"""Quiet tables' marks moved by the replication slot: only for partitions read and produced to their end by a high
watermark fetched after the slot confirmed, and only as far as the probe it confirmed."""

import orjson

from dqhash.agents.debezium_idle import caught_up
from tests.agents.test_debezium_runs import reader
from tests.e2e.test_debezium import TOPIC, change

OTHER = "dbserver1.inventory.orders"  # not a catalog table: no mark however quiet


def caught_up_moved(*args):
    moved, ended = caught_up(*args)
    assert ended == []  # no snapshot run open here
    return moved


def marked(dbz, at=1_000.0):
    dbz.sent()
    outs = dbz.marks(at)
    return {m["source"]: m["through"] for m in orjson.loads(outs[0].value)["progress"]} if outs else {}


def test_a_partition_read_to_its_end_after_the_slot_confirmed_moves_to_the_probes_time(tmp_path, monkeypatch):
    import dqhash.agents.debezium_idle as idle

    dbz = reader(tmp_path)
    key, value = change(1, ts=1_700_000_000_000, updated_at=1714564800123456)
    dbz.read(TOPIC, 0, 41, key, value, None)
    dbz.processed[f"{TOPIC}:0"] = 42
    monkeypatch.setattr(idle, "now_ms", lambda: 5_000)
    assert not caught_up_moved(dbz, 100, 1_700_000_060_000, 99, [(f"{TOPIC}:0", 42, 9_000, 0)])  # slot not past it
    behind = [(f"{TOPIC}:0", 43, 9_000, 0)]  # one record left to read
    assert not caught_up_moved(dbz, 200, 1_700_000_070_000, 150, behind) and list(dbz.confirmed) == [
        (1_700_000_060_000, 5_000)
    ]
    stale = [(f"{TOPIC}:0", 42, 4_000, 0)]  # a high watermark fetched before the slot confirmed proves nothing
    assert not caught_up_moved(dbz, 300, 1_700_000_080_000, 150, stale)
    assert marked(dbz) == {f"{TOPIC}:0": 1_700_000_000_000}  # still its last change
    assert caught_up_moved(
        dbz, 400, 1_700_000_090_000, 150, [(f"{TOPIC}:0", 42, 9_000, 0), (f"{OTHER}:0", 0, 9_000, 0)]
    )
    assert marked(dbz, 1_010.0) == {f"{TOPIC}:0": 1_700_000_060_000}  # the probe the slot passed, no further


def test_a_table_with_no_change_since_the_start_takes_the_table_its_topic_is_named_for(tmp_path):
    dbz = reader(tmp_path)
    dbz.confirmed.append((1_700_000_060_000, 5_000))
    assert caught_up_moved(dbz, 1, 1, None, [(f"{TOPIC}:0", 7, 9_000, 7)])  # committed to its end before the restart
    assert marked(dbz) == {f"{TOPIC}:0": 1_700_000_060_000}


def test_a_slot_that_moves_at_every_ask_still_moves_the_marks_to_the_confirmation_before_the_fetch(
    tmp_path, monkeypatch
):
    import dqhash.agents.debezium_idle as idle

    dbz = reader(tmp_path)
    dbz.confirmed.clear()
    clock = iter([10_000, 15_000])  # when each confirmation is noted
    monkeypatch.setattr(idle, "now_ms", lambda: next(clock))
    part = [(f"{TOPIC}:0", 0, 7_000, 0)]  # fetched between the first and the second ask
    assert not caught_up_moved(dbz, 100, 1_700_000_001_000, None, part)
    assert caught_up_moved(dbz, 200, 1_700_000_002_000, 100, part) is False  # confirmed at 10 000: after the fetch
    assert caught_up_moved(dbz, 300, 1_700_000_003_000, 200, [(f"{TOPIC}:0", 0, 12_000, 0)])
    assert marked(dbz) == {f"{TOPIC}:0": 1_700_000_001_000}  # confirmed at 10 000, before the fetch at 12 000
