"""The reconciler with dict tables: routing, dead letters, sweeps, windows, expiry, rebuild."""

import itertools

import orjson
import pytest

from dqhash.core.codec import decode_state
from dqhash.core.outputs import DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON, DLQ_TOPIC
from dqhash.core.partitioning import partition_for
from dqhash.core.window_keys import is_window_key, window_key, window_partition_of
from dqhash.engine.reconciler import Reconciler
from dqhash.engine.routing import SIDE_HEADER
from dqhash.engine.window_book import REPUBLISH_EVERY_MS
from dqhash.ops.dogstatsd import Metrics
from dqhash.settings import load

T0 = 1_714_564_800_000
H1, H2 = "11" * 32, "22" * 32
N = 4


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def scan(table, partition, after=None):
    """Snapshot per partition in key order, after ``after``, as the RocksDB store's iterator is."""
    return iter(
        sorted(
            (k, v)
            for k, v in list(table.items())
            if (window_partition_of(k) if is_window_key(k) else partition_for(k.decode(), N)) == partition
            and (after is None or k > after)
        )
    )


_tick_offsets = itertools.count()


def tick(r, partition, offset=None):
    """A tick record, each with its own offset as the tick topic gives them."""
    return r.on_tick(partition, next(_tick_offsets) if offset is None else offset)


@pytest.fixture
def rig():
    settings = load(
        {
            "DQHASH_PARTITIONS": str(N),
            "DQHASH_WINDOW_SECONDS": "60",
            "DQHASH_GRACE_SECONDS": "30",
            "DQHASH_RETENTION_SECONDS": "600",
            "DQHASH_TICK_SECONDS": "1",
        }
    )
    clock = Clock(T0 + 1_000)
    pairs = {}
    reconciler = Reconciler(settings, pairs, Metrics("127.0.0.1", 9, [], enabled=False), scan, clock)
    return reconciler, clock, pairs, pairs


def event(pk="k1", event_id="e1", digest=H1, action="UPDATE", ts=T0 + 1_000):
    return orjson.dumps(
        {
            "event_id": event_id,
            "hash_onprem": digest,
            "partitionColumns": [{"type": "PK", "value": pk}],
            "event_ts": ts,
            "action": action,
        }
    )


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
    assert audits(tick(r, p)) == []
    clock.now = T0 + 90_000
    outs = tick(r, p)
    [record] = audits(outs)
    assert record["status"] == "MISSING_CLOUD"
    [window] = [orjson.loads(o.value) for o in outs if o.topic == "dq-metrics"]
    assert window["counts"] == {"MISSING_CLOUD": 1} and window["revision"] == 1 and window["partition"] == p
    assert orjson.loads(windows[window_key(p, T0)])["closed"] is True
    # a late hash re-classifies, and the closed window is published again with a higher revision
    clock.now = T0 + 95_000
    [late] = audits(r.on_input("cloud", "topic2", p, 1, b"k1", cloud(ts=T0 + 95_000), []))
    assert late["status"] == "MATCH" and late["late"] is True
    [revised] = [orjson.loads(o.value) for o in tick(r, p) if o.topic == "dq-metrics"]
    assert revised["revision"] == 2 and revised["counts"] == {"MISSING_CLOUD": 1, "LATE_MATCH": 1}


def test_window_waits_for_backfilled_events_full_grace(rig):
    r, clock, *_ = rig
    p = home("k1")
    clock.now = T0 + 500_000  # the event is from long ago: deadline = arrival + grace
    r.on_input("onprem", "topic1", p, 0, b"k1", event(ts=T0 + 1_000), [])
    r.on_input("onprem", "topic1", p, 1, b"k1", event(event_id="dup"), [])  # a duplicate counts in the window
    clock.now = T0 + 500_001
    assert [o for o in tick(r, p) if o.topic == "dq-metrics"] == []  # not closed: an event is pending
    clock.now = T0 + 530_000
    outs = tick(r, p)
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
    tick(r, p)
    assert b"k1" in pairs
    clock.now = T0 + 1_000 + 600_000 + 300_000  # next pass (interval = retention / 4) finds it expired
    tick(r, p)
    assert b"k1" not in pairs


def test_pending_state_never_expires(rig):
    r, clock, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    r.index.drop_partition(p)  # so the deadline does not decide it
    clock.now = T0 + 10 * 600_000
    tick(r, p)
    assert b"k1" in pairs


def test_rebuild_restores_the_deadline_index_from_the_table(rig):
    r, clock, pairs, windows = rig
    pks = [f"k{i}" for i in range(50)]
    for i, pk in enumerate(pks):
        r.on_input("onprem", "topic1", home(pk), i, pk.encode(), event(pk=pk, event_id=f"e{i}"), [])
    fresh = Reconciler(r.settings, pairs, r.metrics, r.scan, clock)
    fresh.rebuild(range(N))
    assert len(fresh.index) == 50
    clock.now = T0 + 90_000
    missing = [a for p in range(N) for a in audits(tick(fresh, p))]
    assert sorted(a["pk"] for a in missing) == sorted(pks)


def test_a_settled_pairs_deadline_is_passed_over_without_reading_its_state(rig):
    """The sweep reads only the pairs still pending: a pair that settled before its deadline costs no read."""
    r, clock, pairs, _ = rig
    reads = []
    r.read = lambda partition, key: reads.append(key) or pairs.get(key)
    p = home("k1")
    late = next(pk for pk in (f"x{i}" for i in range(100)) if home(pk) == p)
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    r.on_input("cloud", "topic2", p, 0, b"k1", cloud(), [])  # settled: MATCH
    r.on_input("onprem", "topic1", p, 1, late.encode(), event(pk=late, event_id="e2"), [])  # never answered
    reads.clear()
    clock.now = T0 + 90_000
    [record] = audits(tick(r, p))
    assert record["pk"] == late and record["status"] == "MISSING_CLOUD"
    assert reads.count(b"k1") == 0 and reads.count(late.encode()) == 1


def test_a_pair_pending_again_is_swept_at_its_new_deadline_not_its_old_one(rig):
    r, clock, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])  # due at its window's end + grace: T0 + 90 s
    r.on_input("cloud", "topic2", p, 0, b"k1", cloud(), [])  # MATCH
    clock.now = T0 + 70_000
    r.on_input("onprem", "topic1", p, 1, b"k1", event(event_id="e2", digest=H2, ts=T0 + 70_000), [])  # T0 + 150 s
    clock.now = T0 + 100_000  # the first deadline has passed, not the second
    assert audits(tick(r, p)) == []
    assert decode_state(pairs[b"k1"]).tracked.event_id == "e2"
    clock.now = T0 + 150_000
    [record] = audits(tick(r, p))
    assert record["status"] == "MISMATCH" and record["event_id"] == "e2"


def test_a_pending_pair_is_held_under_one_string_by_the_deadline_index_and_the_verified_book(rig):
    """Both hold every pending pair until it settles: one string between them, not a copy each."""
    r, *_ = rig
    r.on_input("onprem", "topic1", home("pk-1"), 0, b"pk-1", event(pk="pk-1"), [])
    [indexed] = [pk for part in r.index._parts.values() for entries in part.buckets.values() for pk in entries]
    [tracked] = [pk for book in r.verified._pending.values() for table in book.tables.values() for pk in table.entries]
    assert indexed == "pk-1" and indexed is tracked


def test_rebuild_forgets_partitions_no_longer_owned(rig):
    r, *_ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    r.rebuild([q for q in range(N) if q != p])
    assert r.index.pop_due(p, T0 + 10**9) == []


def window_counts(pairs):
    return {k: orjson.loads(v)["counts"] for k, v in pairs.items() if is_window_key(k)}


def test_a_record_redelivered_after_it_was_applied_changes_and_counts_nothing(rig):
    r, _, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 5, b"k1", event(), [])
    before = dict(pairs)
    assert r.on_input("onprem", "topic1", p, 5, b"k1", event(), []) == []  # same offset: Kafka redelivery
    assert pairs == before  # not a DUPLICATES count: the upstream did not send it twice
    assert r.on_input("onprem", "topic1", p, 6, b"k1", event(), []) == []  # a real replay, at a new offset
    assert window_counts(pairs) == {window_key(p, T0): {"DUPLICATES": 1}}


def test_counts_survive_a_crash_between_the_window_write_and_the_pair_write(rig):
    """The window's per-source offsets make a reprocessed record's counts land exactly once."""
    r, _, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    pair_before = pairs[b"k1"]
    [first] = audits(r.on_input("cloud", "topic2", p, 0, b"k1", cloud(), []))
    pairs[b"k1"] = pair_before  # the crash lost the pair's new state; its window write had landed
    [again] = audits(r.on_input("cloud", "topic2", p, 0, b"k1", cloud(), []))
    assert again["audit_id"] == first["audit_id"]  # classified again: same audit record, idempotent
    assert window_counts(pairs) == {window_key(p, T0): {"MATCH": 1}}


def test_a_redelivered_tick_counts_its_verdicts_once(rig):
    r, clock, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    pending = pairs[b"k1"]
    clock.now = T0 + 90_000
    assert [a["status"] for a in audits(tick(r, p, offset=7))] == ["MISSING_CLOUD"]
    pairs[b"k1"] = pending  # lost with the crash; the window counts were written first and survived
    fresh = Reconciler(r.settings, pairs, r.metrics, r.scan, clock)
    fresh.rebuild(range(N))
    assert [a["status"] for a in audits(tick(fresh, p, offset=7))] == ["MISSING_CLOUD"]
    assert window_counts(pairs)[window_key(p, T0)] == {"MISSING_CLOUD": 1}


def test_pair_keeps_its_newest_verdicts_for_inspection(rig):
    r, clock, pairs, _ = rig
    p = home("k1")
    for i in range(7):
        clock.now += 10
        r.on_input("onprem", "topic1", p, 2 * i, b"k1", event(event_id=f"e{i}", ts=T0 + 1_000 + i), [])
        r.on_input("cloud", "topic2", p, 2 * i, b"k1", cloud(ts=T0 + 2_000 + i), [])
    history = decode_state(pairs[b"k1"]).history
    assert [h[2] for h in history] == ["e2", "e3", "e4", "e5", "e6"] and {h[0] for h in history} == {"MATCH"}


def test_a_closed_window_changed_by_a_late_verdict_is_republished_after_a_restart(rig):
    r, clock, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    clock.now = T0 + 90_000
    tick(r, p)
    r.on_input("cloud", "topic2", p, 1, b"k1", cloud(ts=T0 + 95_000), [])  # late MATCH: revision 2, unpublished
    fresh = Reconciler(r.settings, pairs, r.metrics, r.scan, clock)
    fresh.rebuild(range(N))
    assert [o for o in tick(fresh, p) if o.topic == "dq-metrics"] == []  # published less than a second ago
    clock.now += REPUBLISH_EVERY_MS
    [revised] = [orjson.loads(o.value) for o in tick(fresh, p) if o.topic == "dq-metrics"]
    assert revised["revision"] == 2 and revised["counts"] == {"MISSING_CLOUD": 1, "LATE_MATCH": 1}
    assert [o for o in tick(fresh, p) if o.topic == "dq-metrics"] == []  # published once


def test_a_record_forwarded_again_after_a_crash_is_not_counted_as_a_replay(rig):
    """A redelivered input record is re-keyed again at a new re-key offset; its origin gives it away."""
    r, _, pairs, _ = rig
    wrong = (home("k1") + 1) % N
    [first] = r.on_input("onprem", "topic1", wrong, 9, b"e1", event(), [])
    [again] = r.on_input("onprem", "topic1", wrong, 9, b"e1", event(), [])  # the source partition redelivered
    assert dict(first.headers)["dq.origin"] == b"onprem:%d:9" % wrong
    r.on_rekeyed(home("k1"), 0, first.key, first.value, first.headers)
    assert r.on_rekeyed(home("k1"), 1, again.key, again.value, again.headers) == []
    [replayed] = r.on_input("onprem", "topic1", wrong, 10, b"e1", event(), [])  # a real upstream replay
    r.on_rekeyed(home("k1"), 2, replayed.key, replayed.value, replayed.headers)
    assert window_counts(pairs) == {window_key(home("k1"), T0): {"DUPLICATES": 1}}


def test_a_new_owner_publishes_recent_verdicts_again_in_case_they_were_lost(rig):
    """The verdict travels with the state: if the state survived the crash, its audit record is re-sent."""
    r, clock, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    [sent] = audits(r.on_input("cloud", "topic2", p, 0, b"k1", cloud(), []))
    successor = Reconciler(r.settings, pairs, r.metrics, r.scan, clock)
    assert audits(successor.rebuild(range(N))) == [sent]  # same audit_id: a downstream upsert
    assert successor.rebuild(range(N)) == []  # a rebalance that keeps the partitions sends nothing
    clock.now += 15_000  # a failover takes a session timeout and more: still the partition's last moments
    assert audits(Reconciler(r.settings, pairs, r.metrics, r.scan, clock).rebuild(range(N))) == [sent]


def test_only_the_last_moments_of_a_partition_are_published_again(rig):
    """Outputs well before the partition's newest one were committed, whatever the new owner's clock says."""
    r, clock, pairs, _ = rig
    p = home("k1")
    k2 = next(pk for pk in (f"k{i}" for i in range(2, 200)) if home(pk) == p)
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    r.on_input("cloud", "topic2", p, 0, b"k1", cloud(), [])
    clock.now += 11_000
    r.on_input("onprem", "topic1", p, 1, k2.encode(), event(pk=k2, event_id="e2"), [])
    [newest] = audits(r.on_input("cloud", "topic2", p, 1, k2.encode(), cloud(pk=k2), []))
    clock.now += 30_000
    assert audits(Reconciler(r.settings, pairs, r.metrics, r.scan, clock).rebuild(range(N))) == [newest]


def test_a_new_owner_publishes_recently_closed_windows_again_in_case_they_were_lost(rig):
    """The owner may die after the window's "published" mark reached the changelog and before its record did."""
    r, clock, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    r.on_input("cloud", "topic2", p, 0, b"k1", cloud(), [])
    clock.now = T0 + 90_000
    [published] = [o for o in tick(r, p) if o.topic == "dq-metrics"]
    clock.now += 2_000
    successor = Reconciler(r.settings, pairs, r.metrics, r.scan, clock)
    resent = [o for o in successor.rebuild(range(N)) if o.topic == "dq-metrics"]
    assert resent == [published._replace(headers=[("dq.republished", b"1")])]  # the same record: an upsert
    assert successor.rebuild(range(N)) == []  # a rebalance that keeps the partitions sends nothing
    clock.now += 15_000  # a failover takes a session timeout and more: still the partition's last moments
    late = Reconciler(r.settings, pairs, r.metrics, r.scan, clock).rebuild(range(N))
    assert [o for o in late if o.topic == "dq-metrics"] == resent


def test_republished_verdicts_are_marked(rig):
    r, clock, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(), [])
    r.on_input("cloud", "topic2", p, 0, b"k1", cloud(), [])
    [out] = Reconciler(r.settings, pairs, r.metrics, r.scan, clock).rebuild(range(N))
    assert out.headers == [("dq.republished", b"1")]


def test_the_horizon_holds_a_mismatch_until_topic_1_is_read_past_the_cloud_hash_plus_the_grace(rig):
    r, clock, pairs, _ = rig
    p = home("k1")
    read_to = {"t": T0}
    r.horizon = lambda partition, now: read_to["t"]
    r.on_input("onprem", "topic1", p, 1, b"k1", event())
    r.on_input("cloud", "topic2", p, 1, b"k1", cloud(digest=H2))  # differs, read at T0 + 2_000
    clock.now = T0 + 200_000
    read_to["t"] = T0 + 31_999  # Topic-1 read to just before cloud_ts + grace
    assert audits(tick(r, p)) == []
    read_to["t"] = T0 + 32_000
    [verdict] = audits(tick(r, p))
    assert verdict["status"] == "MISMATCH" and verdict["cloud_ts"] == "2024-05-01T12:00:02.000Z"


def test_a_withdrawal_takes_the_verdict_out_of_its_window_and_cancels_its_repair_request(rig):
    r, clock, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 1, b"k1", event())
    r.on_input("cloud", "topic2", p, 1, b"k1", cloud(digest=H2))
    clock.now = T0 + 40_000
    [mismatch] = audits(tick(r, p))
    assert mismatch["status"] == "MISMATCH" and total_counts(pairs)["MISMATCH"] == 1
    # Topic-1 ran later than the grace: the event behind the cloud's hash, committed before it was read
    outs = r.on_input("onprem", "topic1", p, 2, b"k1", event(event_id="e2", digest=H2, ts=T0 + 1_500))
    withdrawal, match = audits(outs)
    assert (withdrawal["status"], withdrawal["late"], withdrawal["withdraws"]) == (
        "SUPERSEDED",
        True,
        mismatch["audit_id"],
    )
    assert match["status"] == "MATCH"
    [cancel] = [orjson.loads(o.value) for o in outs if o.topic == r.settings.repair_topic]
    assert cancel["repair"] == "cancel" and cancel["withdraws"] == mismatch["audit_id"]
    counts = total_counts(pairs)
    assert counts["MISMATCH"] == 0 and counts["LATE_SUPERSEDED"] == 1 and counts["MATCH"] == 1


def total_counts(pairs):
    from collections import Counter

    total = Counter()
    for counts in window_counts(pairs).values():
        total.update(counts)
    return total


def test_a_tick_read_again_by_a_new_owner_sweeps_no_further_than_its_sender_so_every_verdict_is_counted(rig):
    from dqhash.core.records import SOURCE_TICK, Input
    from dqhash.core.ticks import encode_tick

    r, clock, pairs, _ = rig
    p = home("k1")
    pk2 = next(f"k{i}" for i in range(2, 200) if home(f"k{i}") == p)
    r.on_input("onprem", "topic1", p, 1, b"k1", event())  # due at T0 + 90_000 (window end + grace)
    r.on_input("onprem", "topic1", p, 2, pk2.encode(), event(pk=pk2, event_id="e2", ts=T0 + 2_000), [])
    r.on_input("cloud", "topic2", p, 1, pk2.encode(), cloud(pk=pk2, digest=H2, ts=T0 + 70_000))  # due T0 + 100_000
    clock.now = T0 + 200_000

    def tick_at(offset, now, horizon):
        return r.process([Input(SOURCE_TICK, r.settings.tick_topic, p, offset, None, encode_tick(now, horizon))])

    assert [a["pk"] for a in audits(tick_at(10, T0 + 95_000, T0 + 95_000))] == ["k1"]  # its count is in
    # tick 9, sent before tick 10 and read again after a failover by an owner that has read further: it sweeps
    # only as far as its sender saw, and leaves pk2 to the next tick, whose counts are new
    assert audits(tick_at(9, T0 + 94_000, T0 + 94_000)) == []
    assert [a["pk"] for a in audits(tick_at(11, T0 + 200_000, T0 + 200_000))] == [pk2]
    assert total_counts(pairs)["MISSING_CLOUD"] == 1 and total_counts(pairs)["MISMATCH"] == 1


def test_a_window_revised_on_every_tick_is_published_again_at_most_once_a_second(rig):
    r, clock, _, _ = rig
    p = home("k1")
    keys = [k for k in (f"k{n}" for n in range(200)) if home(k) == p][:6]
    for n, key in enumerate(keys):
        r.on_input("onprem", "topic1", p, n, key.encode(), event(pk=key, event_id=f"e{n}"), [])
    clock.now = T0 + 90_000
    [closed] = [o for o in tick(r, p) if o.topic == "dq-metrics"]
    published = []
    for n, key in enumerate(keys):  # a late hash on each tick, ticks 200 ms apart
        clock.now += 200
        r.on_input("cloud", "topic2", p, n, key.encode(), cloud(pk=key, ts=clock.now), [])
        published += [orjson.loads(o.value) for o in tick(r, p) if o.topic == "dq-metrics"]
    assert [w["revision"] for w in published] == [6]  # one record a second, with every revision folded in
    assert published[0]["counts"]["LATE_MATCH"] == 5
    clock.now += REPUBLISH_EVERY_MS
    [last] = [orjson.loads(o.value) for o in tick(r, p) if o.topic == "dq-metrics"]
    assert last["revision"] == 7 and last["counts"]["LATE_MATCH"] == 6 and tick(r, p) == []


def test_verified_through_follows_the_marks_held_back_by_pending_changes_and_is_published(rig):
    from dqhash.core.progress import Progress, progress_record

    r, clock, _, _ = rig
    marks = orjson.dumps(progress_record([Progress("default", "dbz.orders:0", 1, T0 + 5_000)]))
    for p in range(N):
        assert r.on_input("onprem", "topic1", p, 100, b"progress", marks, []) == []
    assert r.verified.through(home("k1")) == {"default": T0 + 5_000}
    r.on_input("onprem", "topic1", home("k1"), 0, b"k1", event(ts=T0 + 1_000), [])  # no cloud hash yet
    assert r.verified.through(home("k1")) == {"default": T0 + 1_000}  # held back by the pending change
    assert r.verified.oldest() == {"default": T0 + 1_000}
    clock.now += 2_000
    [published] = [orjson.loads(o.value) for o in tick(r, home("k1")) if o.topic == "dq-metrics"
                   and orjson.loads(o.value)["type"] == "verified"]  # fmt: skip
    assert published["tables"]["default"]["through_ms"] == T0 + 1_000 and published["tables"]["default"]["pending"] == 1
    r.on_input("cloud", "topic2", home("k1"), 0, b"k1", cloud(), [])  # its verdict: MATCH
    assert r.verified.through(home("k1")) == {"default": T0 + 5_000}
    assert [o for o in tick(r, home("k1")) if b'"verified"' in (o.value or b"")] == []  # at most once a second


def test_a_new_owner_rebuilds_the_pending_changes_and_a_mark_sent_again_restores_the_time(rig):
    from dqhash.core.progress import Progress, progress_record

    r, clock, pairs, _ = rig
    p = home("k1")
    r.on_input("onprem", "topic1", p, 0, b"k1", event(ts=T0 + 1_000), [])
    fresh = Reconciler(r.settings, pairs, r.metrics, r.scan, clock)
    fresh.rebuild(range(N))
    assert fresh.verified.through(p) == {}  # no mark read yet: unknown, never too new
    marks = orjson.dumps(progress_record([Progress("default", "dbz.orders:0", 1, T0 + 9_000)]))
    fresh.on_input("onprem", "topic1", p, 100, b"progress", marks, [])
    assert fresh.verified.through(p) == {"default": T0 + 1_000}  # the rebuilt pending change holds it


def test_a_rebuild_holds_only_the_last_moments_while_it_scans_however_many_keys_have_an_outbox():
    from dqhash.engine.pair_updates import OUTBOX_MS
    from dqhash.engine.takeover import LastMoments

    moments = LastMoments()
    held = 0
    for i in range(100_000):  # one verdict a millisecond over 100 s: only the last OUTBOX_MS of them are recent
        moments.add(i, i)
        held = max(held, len(moments.entries))
    assert moments.items() == list(range(100_000 - 1 - OUTBOX_MS, 100_000))
    assert held <= 2 * (OUTBOX_MS + 1) + 1_024  # bounded by the window, not by the keys scanned
    late = LastMoments()
    for at in (50_000, 10, 49_999, 39_999):  # any order: the window is measured from the newest
        late.add(at, at)
    assert late.items() == [49_999, 50_000]


def test_a_rebuild_that_skips_settled_pairs_from_their_bytes_rebuilds_what_decoding_every_pair_does(rig, monkeypatch):
    """Settled pairs whose verdicts are older than the last moments seen so far are not built, nor any settled pair
    of a partition the worker already owned; the outputs republished and the deadlines indexed are those of a
    rebuild that builds every pair."""
    from dqhash.core import codec
    from dqhash.engine import takeover

    r, clock, pairs, _ = rig
    for i in range(60):  # a MATCH a second over 60 s, keys not in time order, then three pairs left pending
        clock.now = T0 + 1_000 * i
        pk = f"k{(i * 37) % 60:02d}"
        r.on_input("onprem", "topic1", home(pk), i, pk.encode(), event(pk, f"e{i}", ts=clock.now), [])
        r.on_input("cloud", "topic2", home(pk), i, pk.encode(), cloud(pk, ts=clock.now + 1), [])
    for i in range(60, 63):
        pk = f"k{i}"
        r.on_input("onprem", "topic1", home(pk), i, pk.encode(), event(pk, f"e{i}", ts=clock.now), [])

    built = []

    def counted(data, since):
        state = codec.decode_unless_settled(data, since)
        built.append(state is not None)
        return state

    def every(data, since):
        return codec.decode_state(data)

    rebuilt = {}
    for name, decode in (("skipping", counted), ("building every pair", every)):
        monkeypatch.setattr(takeover, "decode_unless_settled", decode)
        successor = Reconciler(r.settings, pairs, r.metrics, r.scan, clock)
        outs = successor.rebuild(range(N))
        due = {p: successor.index.next_due(p) for p in range(N)}
        kept = successor.rebuild(range(N))  # a rebalance that keeps the partitions: nothing republished
        kept_due = {p: successor.index.next_due(p) for p in range(N)}
        rebuilt[name] = (sorted(audits(outs), key=lambda a: a["audit_id"]), due, kept, kept_due)
    assert rebuilt["skipping"] == rebuilt["building every pair"]
    republished, due, kept, kept_due = rebuilt["skipping"]
    assert 8 <= len(republished) <= 4 * 12  # the last moments of each partition, not all 60 verdicts
    assert kept == [] and kept_due == due and any(d is not None for d in due.values())  # the pending pairs
    takeover_built, rebalance_built = built[:63], built[63:126]
    assert sum(takeover_built) < 63 - 20  # most settled pairs left unbuilt
    assert sum(rebalance_built) == 3  # only the pending pairs: a partition kept republishes nothing


def test_the_expiry_scan_reads_as_many_keys_a_second_whatever_the_tick():
    """A tick five times a second reads a fifth of what a tick a second reads: the scan's cost follows time."""
    from dqhash.core.pair_state import Rules
    from dqhash.engine.expiry import EXPIRY_KEYS_PER_S, EXPIRY_SCAN_BATCH, Expiry
    from dqhash.engine.staged import StagedTable

    table = {f"k{i:05d}".encode(): orjson.dumps([1, None, None, [], T0]) for i in range(20_000)}  # settled
    reads = []

    def scan(table, partition, after=None):
        items = iter(sorted((k, v) for k, v in table.items() if after is None or k > after))
        return (reads.append(k) or (k, v) for k, v in items)

    def keys_read(tick_ms, seconds):
        reads.clear()
        expiry = Expiry(table, scan, Rules(retention_ms=86_400_000), Metrics("127.0.0.1", 9, [], enabled=False))
        expiry.sweep(StagedTable(lambda p, k: None, lambda p, items: []), 0, T0)  # the first tick: a full batch
        first = len(reads)
        for at in range(T0 + tick_ms, T0 + seconds * 1000 + 1, tick_ms):
            staged = StagedTable(lambda p, k: None, lambda p, items: [])
            expiry.sweep(staged, 0, at)
        return first, len(reads) - first

    assert keys_read(1000, 5) == (EXPIRY_SCAN_BATCH, 5 * EXPIRY_KEYS_PER_S)
    assert keys_read(200, 5) == (EXPIRY_SCAN_BATCH, 5 * EXPIRY_KEYS_PER_S)
    assert keys_read(10_000, 20)[1] == 2 * EXPIRY_SCAN_BATCH  # a slow tick still reads at most a batch
