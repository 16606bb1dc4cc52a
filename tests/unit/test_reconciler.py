"""The reconciler with dict tables: routing, dead letters, sweeps, windows, expiry, rebuild."""

import orjson
import pytest

from dqhash.audit import DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON, DLQ_TOPIC
from dqhash.metrics import Metrics
from dqhash.partitioning import partition_for
from dqhash.reconciler import SIDE_HEADER, Reconciler
from dqhash.settings import load

T0 = 1_714_564_800_000
H1, H2 = "11" * 32, "22" * 32
N = 4


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def scan(table, partition):
    """Snapshot per partition, as the RocksDB store's iterator is."""
    if table and b":" in next(iter(table)) and next(iter(table)).split(b":")[0].isdigit():
        return iter([(k, v) for k, v in table.items() if int(k.split(b":")[0]) == partition])
    return iter([(k, v) for k, v in list(table.items()) if partition_for(k.decode(), N) == partition])


@pytest.fixture
def rig():
    settings = load({"DQHASH_PARTITIONS": str(N), "DQHASH_WINDOW_SECONDS": "60", "DQHASH_GRACE_SECONDS": "30",
                     "DQHASH_RETENTION_SECONDS": "600", "DQHASH_TICK_SECONDS": "1"})
    clock = Clock(T0 + 1_000)
    pairs, windows = {}, {}
    reconciler = Reconciler(settings, pairs, windows, Metrics("127.0.0.1", 9, [], enabled=False),
                            lambda table, p: scan(table, p) if table is pairs else
                            iter([(k, v) for k, v in windows.items() if int(k.split(b":")[0]) == p]), clock)
    return reconciler, clock, pairs, windows


def event(pk="k1", event_id="e1", digest=H1, action="UPDATE", ts=T0 + 1_000):
    return orjson.dumps({"event_id": event_id, "hash_onprem": digest, "partitionColumns": [{"type": "PK", "value": pk}],
                         "event_ts": ts, "action": action})


def cloud(pk="k1", digest=H1, ts=T0 + 2_000):
    return orjson.dumps({"pk": pk, "hash_cloud": digest, "cloud_ts": ts})


def home(pk):
    return partition_for(pk, N)


def audits(outs):
    return [orjson.loads(o.value) for o in outs if o.topic == "dq-audit"]


def test_match_through_both_inputs(rig):
    r, clock, pairs, _ = rig
    assert r.on_input("onprem", "topic1", home("k1"), 0, b"k1", event(), []) == []
    outs = r.on_input("cloud", "topic2", home("k1"), 0, b"k1", cloud(), [])
    [record] = audits(outs)
    assert record["status"] == "MATCH" and record["pk"] == "k1" and outs[0].key == b"k1"
    assert b"k1" in pairs


def test_record_in_the_wrong_partition_is_forwarded_to_its_pk_partition(rig):
    r, *_ = rig
    wrong = (home("k1") + 1) % N
    [out] = r.on_input("onprem", "topic1", wrong, 7, b"event-key", event(), [("trace", b"x")])
    assert out.topic == r.settings.rekey_topic and out.partition == home("k1") and out.key == b"k1"
    assert (SIDE_HEADER, b"onprem") in out.headers and ("trace", b"x") in out.headers
    assert r.on_rekeyed(home("k1"), 0, out.key, out.value, out.headers) == []
    [record] = audits(r.on_input("cloud", "topic2", home("k1"), 0, b"k1", cloud(), []))
    assert record["status"] == "MATCH"


def test_rejection_dead_lettered_with_original_bytes_key_and_headers(rig):
    r, *_ = rig
    [out] = r.on_input("onprem", "topic1", 2, 41, b"key", b"{broken", [("origin", b"db1")])
    headers = dict(out.headers)
    assert out.topic == "dq-dlq" and out.key == b"key" and out.value == b"{broken"
    assert headers[DLQ_REASON] == b"INVALID_JSON" and headers[DLQ_TOPIC] == b"topic1"
    assert headers[DLQ_PARTITION] == b"2" and headers[DLQ_OFFSET] == b"41" and headers["origin"] == b"db1"


def test_unexpected_error_dead_letters_as_processing_error(rig):
    r, *_ = rig
    out = r.dead_letter_error(RuntimeError("boom"), "topic1", 0, 3, b"k", b"v", None)
    assert dict(out.headers)[DLQ_REASON] == b"PROCESSING_ERROR" and b"boom" in dict(out.headers)["dq.error.message"]


def test_rekeyed_record_without_side_header_is_dead_lettered(rig):
    r, *_ = rig
    [out] = r.on_rekeyed(0, 0, b"k", event(), [])
    assert dict(out.headers)[DLQ_REASON] == b"PROCESSING_ERROR"


def test_tick_sweeps_due_pairs_to_missing_cloud_and_closes_the_window(rig):
    r, clock, _, windows = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    clock.now = T0 + 89_999
    assert audits(r.on_tick(p)) == []
    clock.now = T0 + 90_000
    outs = r.on_tick(p)
    [record] = audits(outs)
    assert record["status"] == "MISSING_CLOUD"
    [window] = [orjson.loads(o.value) for o in outs if o.topic == "dq-metrics"]
    assert window["counts"] == {"MISSING_CLOUD": 1} and window["revision"] == 1 and window["partition"] == p
    assert orjson.loads(windows[f"{p}:{T0}".encode()])["closed"] is True
    # a late hash re-classifies, and the closed window is published again with a higher revision
    clock.now = T0 + 95_000
    [late] = audits(r.on_input("cloud", "topic2", p, 1, b"k1", cloud(ts=T0 + 95_000), []))
    assert late["status"] == "MATCH" and late["late"] is True
    [revised] = [orjson.loads(o.value) for o in r.on_tick(p) if o.topic == "dq-metrics"]
    assert revised["revision"] == 2 and revised["counts"] == {"MISSING_CLOUD": 1, "LATE_MATCH": 1}


def test_window_waits_for_backfilled_events_full_grace(rig):
    r, clock, *_ = rig
    p = home("k1")
    clock.now = T0 + 500_000  # the event is from long ago: deadline = arrival + grace
    r.on_input("onprem", "topic1", p, 0, b"k1", event(ts=T0 + 1_000), [])
    r.on_input("onprem", "topic1", p, 1, b"k1", event(event_id="dup"), [])  # a duplicate counts in the window
    clock.now = T0 + 500_001
    assert [o for o in r.on_tick(p) if o.topic == "dq-metrics"] == []  # not closed: an event is pending
    clock.now = T0 + 530_000
    outs = r.on_tick(p)
    [window] = [orjson.loads(o.value) for o in outs if o.topic == "dq-metrics"]
    assert window["counts"] == {"DUPLICATES": 1, "MISSING_CLOUD": 1}


def test_duplicates_produce_no_audit_record(rig):
    r, *_ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    assert r.on_input("onprem", "topic1", p, 1, b"k1", event(), []) == []
    assert len(audits(r.on_input("cloud", "topic2", p, 0, b"k1", cloud(), []))) == 1


def test_settled_state_expires_after_retention(rig):
    r, clock, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    r.on_input("cloud", "topic2", p, 0, b"k1", cloud(), [])
    clock.now = T0 + 1_000 + 600_000 - 1
    r.on_tick(p)
    assert b"k1" in pairs
    clock.now = T0 + 1_000 + 600_000 + 300_000  # next pass (interval = retention / 4) finds it expired
    r.on_tick(p)
    assert b"k1" not in pairs


def test_pending_state_never_expires(rig):
    r, clock, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    r.index.drop_partition(p)  # so the deadline does not decide it
    clock.now = T0 + 10 * 600_000
    r.on_tick(p)
    assert b"k1" in pairs


def test_rebuild_restores_the_deadline_index_from_the_table(rig):
    r, clock, pairs, windows = rig
    pks = [f"k{i}" for i in range(50)]
    for i, pk in enumerate(pks):
        r.on_input("onprem", "topic1", home(pk), i, pk.encode(), event(pk=pk, event_id=f"e{i}"), [])
    fresh = Reconciler(r.settings, pairs, windows, r.metrics, r.scan, clock)
    fresh.rebuild(range(N))
    assert len(fresh.index) == 50
    clock.now = T0 + 90_000
    missing = [a for p in range(N) for a in audits(fresh.on_tick(p))]
    assert sorted(a["pk"] for a in missing) == sorted(pks)


def test_rebuild_forgets_partitions_no_longer_owned(rig):
    r, *_ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    r.rebuild([q for q in range(N) if q != p])
    assert r.index.pop_due(p, T0 + 10**9) == []
