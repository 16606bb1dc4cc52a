import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dqhash.core import deadlines
from dqhash.core.classify import on_cloud, on_deadline, on_onprem
from dqhash.core.codec import decode_state, encode_state
from dqhash.core.deadlines import COMPACT_SLACK, DeadlineIndex
from dqhash.core.input_records import Action, CloudHash, HashRef, OnPremEvent
from dqhash.core.outputs import audit_id, audit_record
from dqhash.core.pair_state import Rules
from dqhash.core.partitioning import partition_for
from dqhash.core.tally import merge, metrics_record, new_window

T0 = 1_714_564_800_000


def test_index_pops_only_due_entries_once_in_order():
    index = DeadlineIndex(resolution_ms=1000)
    index.add(0, "late", T0 + 5_000)
    index.add(0, "early", T0 + 1_000)
    index.add(0, "early", T0 + 1_000)
    index.add(1, "other", T0)
    assert index.pop_due(0, T0 + 999) == []
    assert index.pop_due(0, T0 + 1_000) == ["early"]
    assert index.pop_due(0, T0 + 10_000) == ["late"]
    assert index.pop_due(0, T0 + 10_000) == []
    assert index.pop_due(1, T0) == ["other"]


def test_index_never_pops_before_due_within_a_bucket():
    index = DeadlineIndex(resolution_ms=1000)
    index.add(0, "pk", T0 + 1_500)
    assert index.pop_due(0, T0 + 1_499) == []
    assert index.pop_due(0, T0 + 2_000) == ["pk"]


def test_sweep_touches_only_due_buckets():
    index = DeadlineIndex(resolution_ms=1000)
    for i in range(100_000):
        index.add(0, f"pk{i}", T0 + 3_600_000 + i)  # far in the future
    for i in range(10):
        index.add(0, f"due{i}", T0)
    assert len(index.pop_due(0, T0)) == 10
    assert len(index) == 100_000


def test_a_settled_pk_is_not_popped_and_its_entries_do_not_count_against_most():
    index = DeadlineIndex(resolution_ms=1000)
    for n in range(6):
        index.add(0, f"k{n}", T0 + 1_000)
    for n in range(4):
        index.discard(0, f"k{n}")  # settled before their deadline
    index.discard(0, "never-added")
    index.discard(7, "no-such-partition")
    assert index.pop_due(0, T0 + 1_000, most=1) == ["k4"]
    assert index.pop_due(0, T0 + 1_000, most=1) == ["k5"]
    assert index.pop_due(0, T0 + 1_000) == [] and len(index) == 0 and index.next_due(0) is None


def test_a_pk_settled_then_pending_again_is_popped_by_its_new_due_time():
    index = DeadlineIndex(resolution_ms=1000)
    index.add(0, "pk", T0 + 1_000)
    index.discard(0, "pk")
    index.add(0, "pk", T0 + 5_000)
    popped = index.pop_due(0, T0 + 1_000) + index.pop_due(0, T0 + 5_000)
    assert "pk" in popped and index.pop_due(0, T0 + 10_000) == []


def test_a_backlog_of_settled_pairs_leaves_the_index_holding_only_what_is_pending():
    """While the inputs lag no bucket comes due; what settled meanwhile must not stay behind in the buckets."""
    index = DeadlineIndex(resolution_ms=1000)
    for n in range(100_000):
        index.add(0, f"k{n}", T0 + 1_000 + n)
        if n % 10:  # nine in ten settle before their deadline
            index.discard(0, f"k{n}")
    assert len(index) <= 2 * 10_000 + COMPACT_SLACK
    assert index.pop_due(0, T0 + 1_000_000) == [f"k{n}" for n in range(0, 100_000, 10)]
    assert len(index) == 0 and index.next_due(0) is None


_OPS = st.lists(
    st.tuples(st.sampled_from(["add", "add", "discard", "pop"]), st.integers(0, 7), st.integers(0, 20_000)),
    max_size=300,
)


@given(_OPS)
def test_the_index_pops_every_pending_pk_when_due_and_never_a_settled_one(ops):
    """Against a model of the entries added and not yet popped, and of the PKs settled since their last add.
    Compacting at every chance (no slack) must change nothing the index answers."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deadlines, "COMPACT_SLACK", 0)
        _check_against_the_model(ops)


def _check_against_the_model(ops):
    index = DeadlineIndex(resolution_ms=1000)
    entries: dict[str, list[int]] = {}  # each PK's buckets with an entry not yet popped
    latest: dict[str, int] = {}  # each PK's last bucket added
    settled: set[str] = set()
    for op, n, t in ops:
        pk = f"k{n}"
        if op == "add":
            index.add(0, pk, T0 + t)
            bucket = -(-(T0 + t) // 1000)
            entries.setdefault(pk, []).append(bucket)
            latest[pk] = bucket
            settled.discard(pk)
        elif op == "discard":
            index.discard(0, pk)
            settled.add(pk)
        else:
            limit = (T0 + t) // 1000
            popped = index.pop_due(0, T0 + t)
            assert len(popped) == len(set(popped))
            assert not set(popped) & settled  # a settled PK is never read for nothing
            assert set(popped) <= {k for k, buckets in entries.items() if buckets and min(buckets) <= limit}
            pending_due = {k for k, b in latest.items() if b <= limit and k not in settled and b in entries.get(k, [])}
            assert pending_due <= set(popped)  # nothing pending is lost
            for k in list(entries):
                entries[k] = [b for b in entries[k] if b > limit]


def test_drop_partition():
    index = DeadlineIndex()
    index.add(3, "pk", T0)
    index.drop_partition(3)
    assert index.pop_due(3, T0 + 10_000) == [] and len(index) == 0


def test_metrics_record_match_rate_over_compared_pairs():
    window = merge(new_window(), {"MATCH": 3, "MISMATCH": 1, "SKIPPED_DELETE": 5, "DUPLICATES": 2})
    record = metrics_record(window, 2, T0, 60_000, T0 + 90_000)
    assert record["compared"] == 4 and record["match_rate"] == 0.75 and record["partition"] == 2
    assert record["window_start"] == "2024-05-01T12:00:00.000Z" and record["window_end"] == "2024-05-01T12:01:00.000Z"


def test_state_codec_round_trip():
    event = OnPremEvent("e1", "pk", Action.UPDATE, HashRef("v2", "ab" * 32), T0)
    state = on_onprem(None, event, T0, Rules()).state
    state = on_cloud(state, CloudHash("pk", None, T0 + 1, None, ("gone",)), T0 + 2, Rules()).state
    decoded = decode_state(encode_state(state))
    assert decoded == state and decoded.cloud.columns_removed == ("gone",)


def test_audit_id_is_deterministic_and_distinguishes_late():
    event = OnPremEvent("e1", "pk", Action.UPDATE, HashRef("v2", "ab" * 32), T0)
    state = on_onprem(None, event, T0, Rules()).state
    verdict = on_cloud(state, CloudHash("pk", HashRef("v2", "ab" * 32), T0 + 1), T0 + 2, Rules()).verdicts[0]
    assert audit_id("pk", verdict) == audit_id("pk", verdict._replace(classified_ms=T0 + 99))
    assert audit_id("pk", verdict) != audit_id("pk", verdict._replace(late=True))
    record = audit_record("pk", verdict)
    assert set(record) >= {
        "audit_id",
        "pk",
        "event_id",
        "status",
        "reason",
        "late",
        "hash_onprem",
        "hash_cloud",
        "event_ts",
        "cloud_ts",
        "window_start",
        "window_end",
        "classified_at",
    }
    assert record["classified_at"].endswith("Z") and orjson.dumps(record)


@given(st.text(min_size=1, max_size=30), st.integers(1, 64))
def test_partition_for_is_in_range_and_matches_kafka_default(pk, n):
    assert 0 <= partition_for(pk, n) < n


def test_partition_for_known_murmur2_values():
    # Values computed by Kafka's Java DefaultPartitioner (Utils.toPositive(Utils.murmur2(key)) % n).
    from aiokafka.partitioner import DefaultPartitioner

    for pk in ("42", "customer-1", "é"):
        assert partition_for(pk, 12) == DefaultPartitioner()(pk.encode(), list(range(12)), list(range(12)))


def test_state_written_before_applied_and_history_existed_still_decodes():
    old = orjson.dumps([1, None, None, ["fp"], 5])
    state = decode_state(old)
    assert state.applied == (-1, -1, -1) and state.history == () and state.recent == ("fp",)


def test_the_expiry_scan_reads_from_stored_bytes_what_expires_at_says():
    from dqhash.core.codec import settled_since
    from dqhash.core.pair_state import expires_at

    rules = Rules()
    event = OnPremEvent("e1", "pk", Action.UPDATE, HashRef("v2", "ab" * 32), T0)
    pending = on_onprem(None, event, T0, rules).state
    settled = on_cloud(pending, CloudHash("pk", HashRef("v2", "ab" * 32), T0 + 1), T0 + 2, rules).state
    cloud_only = on_cloud(None, CloudHash("pk", None, T0 + 1), T0 + 3, rules).state
    scanned = CloudHash("pk", HashRef("v2", "ab" * 32), T0 + 1, None, (), "s1", 3)
    unjudged = on_cloud(None, scanned, T0 + 4, rules).state  # a cloud-only row its run has yet to judge
    row = OnPremEvent("s1:pk", "pk", Action.SNAPSHOT, HashRef("v2", "ab" * 32), T0, "s1", 3)
    paired = on_onprem(unjudged, row, T0 + 5, rules).state  # matched when it paired: judged
    assert not unjudged.snapshot.judged and paired.snapshot.judged
    for state in (pending, settled, cloud_only, unjudged, paired):
        since = settled_since(encode_state(state))
        assert (since + rules.retention_ms if since is not None else None) == expires_at(state, rules)
    assert settled_since(encode_state(pending)) is None and settled_since(encode_state(settled)) == T0 + 2


def test_audit_ids_are_the_ones_earlier_versions_wrote():
    """Downstream rows are upserted by audit_id: the formula must never drift."""
    import hashlib

    event = OnPremEvent("e1", "pk", Action.UPDATE, HashRef("v2", "ab" * 32), T0)
    state = on_onprem(None, event, T0, Rules()).state
    verdict = on_cloud(state, CloudHash("pk", HashRef("v2", "ab" * 32), T0 + 1), T0 + 2, Rules()).verdicts[0]
    for late in (False, True):
        v = verdict._replace(late=late)
        key = "\x1f".join(("pk", v.event_id, str(v.event_ts), v.status.value, "1" if late else "0"))
        assert audit_id("pk", v) == audit_record("pk", v)["audit_id"] == hashlib.sha256(key.encode()).hexdigest()[:32]


def test_a_tracked_event_stored_before_its_later_fields_existed_still_decodes():
    tracked = ["e1", T0, "UPDATE", "v2", "ab" * 32, T0, T0 + 5, "PENDING", False]  # no rechecks, results, awaiting
    state = decode_state(orjson.dumps([1, tracked, None, [], T0]))
    assert state.tracked.recheck_results == () and state.tracked.rechecks == 0 and state.tracked.awaiting_ms is None


def test_a_state_with_verdicts_in_its_outbox_round_trips_to_equal_typed_tuples():
    from dqhash.core.classify import Status
    from dqhash.core.pair_state import Verdict

    event = OnPremEvent("e1", "pk", Action.UPDATE, HashRef("v2", "ab" * 32), T0)
    state = on_onprem(None, event, T0, Rules()).state
    step = on_cloud(state, CloudHash("pk", HashRef("v2", "cd" * 32), T0 + 1), T0 + 2, Rules())
    step = on_deadline(step.state, T0 + 3_600_000, Rules())
    settled = step.state._replace(outbox=step.verdicts, history=(("MISMATCH", False, "e1", T0 + 2, "x"),))
    decoded = decode_state(encode_state(settled))
    assert decoded == settled and type(decoded.outbox[0]) is Verdict and decoded.outbox[0].status is Status.MISMATCH
    assert type(decoded.tracked).__name__ == "Tracked" and type(decoded.cloud).__name__ == "CloudSeen"


def test_a_stored_verdict_of_an_unknown_status_is_a_clear_error():
    import pytest

    verdict = ["NOT_A_STATUS", "r", False, "e1", T0, "UPDATE", None, None, None, T0, T0 + 1, T0, T0, 0, []]
    with pytest.raises(ValueError, match="unknown verdict status 'NOT_A_STATUS'"):
        decode_state(orjson.dumps([1, None, None, [], T0, [-1, -1, -1], [], [], [verdict]]))


def test_a_judging_sweep_reads_from_stored_bytes_whether_a_member_is_judged():
    """``snapshot_judged`` reads the stored bytes; it must say what the decoded state says, whatever the state
    ends with (no membership, an outbox of verdicts, an unjudged or a judged membership)."""
    from dqhash.core.codec import snapshot_judged

    rules = Rules()
    digest = HashRef("v2", "ab" * 32)
    scanned = CloudHash("pk", digest, T0 + 1, None, (), "s1", 3)
    row = OnPremEvent("s1:pk", "pk", Action.SNAPSHOT, digest, T0, "s1", 3)
    streamed = on_onprem(None, OnPremEvent("e1", "pk", Action.UPDATE, digest, T0), T0, rules).state
    matched = on_cloud(streamed, CloudHash("pk", digest, T0 + 1), T0 + 2, rules).state
    with_outbox = matched._replace(outbox=on_cloud(streamed, CloudHash("pk", digest, T0 + 1), T0 + 2, rules).verdicts)
    unjudged = on_cloud(None, scanned, T0 + 4, rules).state
    judged = on_onprem(unjudged, row, T0 + 5, rules).state
    states = (streamed, matched, with_outbox, unjudged, judged, judged._replace(outbox=with_outbox.outbox))
    assert with_outbox.outbox and judged.snapshot.judged and not unjudged.snapshot.judged
    for state in states:
        member = decode_state(encode_state(state)).snapshot
        assert snapshot_judged(encode_state(state)) == (member is not None and member.judged), state


def test_a_rebuild_leaves_unbuilt_only_a_settled_pair_with_no_verdict_since_its_cut():
    """``decode_unless_settled`` reads the stored bytes: it must skip exactly the states that are settled (what
    ``expires_at`` says) and whose outbox has no verdict at or after the cut, and build every other as
    ``decode_state`` does."""
    from dqhash.core.codec import decode_unless_settled
    from dqhash.core.pair_state import expires_at

    rules = Rules()
    digest = HashRef("v2", "ab" * 32)
    pending = on_onprem(None, OnPremEvent("e1", "pk", Action.UPDATE, digest, T0), T0, rules).state
    step = on_cloud(pending, CloudHash("pk", digest, T0 + 1), T0 + 2, rules)
    with_outbox = step.state._replace(outbox=step.verdicts)  # a MATCH given at T0 + 2
    scanned = CloudHash("pk", digest, T0 + 1, None, (), "s1", 3)
    unjudged = on_cloud(None, scanned, T0 + 4, rules).state
    states = (pending, step.state, with_outbox, unjudged, with_outbox._replace(snapshot=unjudged.snapshot))
    assert with_outbox.outbox and with_outbox.outbox[0].classified_ms == T0 + 2
    for state in states:
        stored = encode_state(state)
        settled = expires_at(state, rules) is not None
        newest = max((v.classified_ms for v in state.outbox), default=-1)
        for cut in (None, T0 + 2, T0 + 3):
            skipped = settled and (cut is None or newest < cut)
            assert decode_unless_settled(stored, cut) == (None if skipped else decode_state(stored)), (state, cut)
    assert decode_unless_settled(encode_state(with_outbox), T0 + 2) == with_outbox  # its verdict is at the cut
    assert decode_unless_settled(encode_state(with_outbox), T0 + 3) is None
