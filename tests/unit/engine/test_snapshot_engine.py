"""Snapshot runs in the reconciler (dict tables): counted once per PK and side, complete only when both
sides' end markers and rows are in, judged by a bounded sweep that a restart resumes, summarised per partition."""

import itertools

import orjson
import pytest

from dqhash.core.partitioning import partition_for
from dqhash.core.snapshots import is_snapshot_key, snapshot_key, snapshot_partition_of
from dqhash.core.window_keys import is_window_key, window_partition_of
from dqhash.engine import snapshot_book
from dqhash.engine.reconciler import Reconciler
from dqhash.ops.dogstatsd import Metrics
from dqhash.settings import load

T0 = 1_714_564_800_000
H1, H2 = "11" * 32, "22" * 32
N = 2


def partition_of(key):
    if is_window_key(key):
        return window_partition_of(key)
    if is_snapshot_key(key):
        return snapshot_partition_of(key)
    return partition_for(key.decode(), N)


def scan(table, partition, after=None):
    return iter(
        sorted((k, v) for k, v in list(table.items()) if partition_of(k) == partition and (after is None or k > after))
    )


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def rig():
    settings = load({"DQHASH_PARTITIONS": str(N), "DQHASH_GRACE_SECONDS": "30", "DQHASH_SNAPSHOT_TOPIC": "snaps"})
    clock, pairs = Clock(T0 + 1_000), {}
    return Reconciler(settings, pairs, Metrics("127.0.0.1", 9, [], enabled=False), scan, clock), clock, pairs


offsets = itertools.count(1000)


def row(pk, digest=H1, snapshot_id="s1", token_range=1):
    doc = {
        "event_id": f"{snapshot_id}:{pk}",
        "hash_onprem": digest,
        "partitionColumns": [{"type": "PK", "value": pk}],
        "event_ts": T0,
        "action": "SNAPSHOT",
        "snapshot_id": snapshot_id,
        "range": token_range,
    }
    return orjson.dumps(doc)


def scanned(pk, digest=H1, snapshot_id="s1", token_range=1):
    return orjson.dumps(
        {"pk": pk, "hash_cloud": digest, "cloud_ts": T0 + 10, "snapshot_id": snapshot_id, "range": token_range}
    )


def end(rows, snapshot_id="s1"):
    return orjson.dumps({"snapshot_id": snapshot_id, "snapshot_end": True, "rows": rows, "started_ts": T0})


def pks_of(partition, n):
    return [pk for pk in (f"k{i}" for i in range(200)) if partition_for(pk, N) == partition][:n]


def record(pairs, partition, snapshot_id="s1"):
    raw = pairs.get(snapshot_key(partition, snapshot_id))
    return orjson.loads(raw) if raw else None


def ticks(r, partition, n=1):
    outs = []
    for _ in range(n):
        outs += r.on_tick(partition, next(offsets))
    return outs


def audits(outs):
    return [orjson.loads(o.value) for o in outs if o.topic == "dq-audit"]


def test_a_partition_is_judged_once_both_sides_markers_and_rows_are_in_whatever_the_order(rig):
    r, clock, pairs = rig
    p = 0
    both, onprem_only, cloud_only, forwarded = pks_of(p, 4)
    # the on-prem marker overtakes a row that reaches its partition through the re-key topic
    r.on_input("onprem", "topic1", p, 1, None, end(3))
    for offset, pk in enumerate([both, onprem_only], start=2):
        r.on_input("onprem", "topic1", p, offset, pk.encode(), row(pk))
    assert record(pairs, p)["complete_ms"] is None
    r.on_input("cloud", "topic2", p, 1, both.encode(), scanned(both))
    r.on_input("cloud", "topic2", p, 2, cloud_only.encode(), scanned(cloud_only))
    r.on_input("cloud", "topic2", p, 3, None, end(2))
    assert record(pairs, p)["complete_ms"] is None  # one on-prem row is still on its way
    assert [a["status"] for a in audits(ticks(r, p))] == []  # no verdict from a timer's guess
    outs = r.on_rekeyed(
        p, 1, forwarded.encode(), row(forwarded), [("dq.side", b"onprem"), ("dq.origin", b"onprem:1:9")]
    )
    assert record(pairs, p)["complete_ms"] is not None
    assert audits(ticks(r, p)) == []  # judged once the inputs are read past completion + grace
    clock.now += 30_000
    matched = pairs[both.encode()]
    judging = ticks(r, p)
    assert pairs[both.encode()] is matched  # judged when it paired: the sweep does not write it again
    judged = audits(judging)
    assert sorted((a["pk"], a["status"]) for a in judged) == sorted(
        [(onprem_only, "MISSING_CLOUD"), (forwarded, "MISSING_CLOUD"), (cloud_only, "EXTRA_IN_CLOUD")]
    )
    assert all(a["snapshot_id"] == "s1" for a in judged) and outs == []
    summary = record(pairs, p)
    assert summary["judged_ms"] is not None
    assert summary["counts"] == {"MATCH": 1, "MISSING_CLOUD": 2, "EXTRA_IN_CLOUD": 1}
    assert summary["ranges"]["1"]["onprem"] == 3 and summary["ranges"]["1"]["cloud"] == 2
    [published] = [o for o in judging if o.topic == "snaps"]
    assert orjson.loads(published.value)["judged"] and orjson.loads(published.value)["counts"] == summary["counts"]


def test_a_redelivered_row_or_marker_counts_nothing_twice(rig):
    r, clock, pairs = rig
    p = 1
    [pk] = pks_of(p, 1)
    for _ in range(2):  # the same record, redelivered after a crash
        r.on_input("onprem", "topic1", p, 5, pk.encode(), row(pk))
        r.on_input("onprem", "topic1", p, 6, None, end(1))
    assert record(pairs, p)["onprem"] == {"rows": 1, "expected": 1, "started_ts": T0, "ended_ms": T0 + 1_000}
    r.on_input("onprem", "topic1", p, 7, pk.encode(), row(pk))  # a producer's retry: same event, new offset
    assert record(pairs, p)["onprem"]["rows"] == 1


def test_the_summary_is_published_to_the_snapshots_topic_when_it_changes(rig):
    r, clock, pairs = rig
    p = 0
    [pk] = pks_of(p, 1)
    r.on_input("onprem", "topic1", p, 1, pk.encode(), row(pk))
    [first] = [o for o in ticks(r, p) if o.topic == "snaps"]
    assert first.key == b"recon:s1:0" and orjson.loads(first.value)["onprem"]["rows"] == 1
    assert [o for o in ticks(r, p) if o.topic == "snaps"] == []  # unchanged: not again


def test_a_sweep_is_bounded_per_tick_and_a_restart_resumes_it(rig, monkeypatch):
    monkeypatch.setattr(snapshot_book, "SWEEP_BATCH", 3)
    r, clock, pairs = rig
    p = 0
    pks = pks_of(p, 8)
    for offset, pk in enumerate(pks, start=1):
        r.on_input("onprem", "topic1", p, offset, pk.encode(), row(pk))
    r.on_input("onprem", "topic1", p, 100, None, end(8))
    r.on_input("cloud", "topic2", p, 1, None, end(0))
    clock.now += 30_000
    first = audits(ticks(r, p))
    assert 0 < len(first) <= 3
    r.rebuild([0, 1])  # a restart: derived state from the table, the sweep begins again
    rest = []
    for _ in range(5):
        rest += audits(ticks(r, p))
    assert sorted(a["pk"] for a in first + rest) == sorted(pks)  # each judged once
    assert record(pairs, p)["judged_ms"] is not None


def test_snapshot_records_do_not_expire_as_pairs_and_survive_a_pass_of_the_expiry_scan(rig):
    r, clock, pairs = rig
    p = 0
    [pk] = pks_of(p, 1)
    r.on_input("onprem", "topic1", p, 1, pk.encode(), row(pk))
    clock.now += 10 * 24 * 3600 * 1000
    ticks(r, p, 3)
    assert record(pairs, p) is not None
