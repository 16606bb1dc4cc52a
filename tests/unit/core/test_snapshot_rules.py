"""Rows 23-34 of docs/classification.md: snapshots, delete verification, tombstones, re-verification."""

from dqhash.core.classify import Status, on_cloud, on_deadline, on_onprem, on_snapshot_complete, reverify
from dqhash.core.contracts import parse_cloud, parse_onprem, tombstone_event
from dqhash.core.input_records import Action, CloudHash, HashRef, OnPremEvent, Reason, Rejection, SnapshotEnd
from dqhash.core.pair_state import AWAITING_SNAPSHOT, Rules, expires_at, pending_deadline
from dqhash.core.windows import WindowSpec

RULES = Rules(WindowSpec(size_ms=60_000, grace_ms=30_000), retention_ms=3_600_000)
LOOKUPS = RULES._replace(lookups=True, rechecks=1, recheck_backoff_ms=1_000)
DELETES = RULES._replace(verify_deletes=True)
T0 = 1_714_564_800_000
H1, H2 = "11" * 32, "22" * 32


def snapshot_row(digest=H1, ts=T0, snapshot_id="s1", token_range=3, event_id="s1:k"):
    return OnPremEvent(event_id, "k", Action.SNAPSHOT, HashRef("v2", digest), ts, snapshot_id, token_range)


def scanned(digest=H1, ts=T0 + 500, snapshot_id="s1", token_range=3):
    return CloudHash("k", HashRef("v2", digest), ts, None, (), snapshot_id, token_range)


def event(digest=H1, ts=T0 + 1_000, action=Action.UPDATE, event_id="e1"):
    return OnPremEvent(event_id, "k", action, HashRef("v2", digest) if digest else None, ts)


def cloud(digest=H1, ts=T0 + 2_000):
    return CloudHash("k", HashRef("v2", digest) if digest else None, ts)


def statuses(step):
    return [(v.status, v.late) for v in step.verdicts]


def test_row_23_snapshot_rows_pair_without_a_timer_and_join_the_run():
    step = on_onprem(None, snapshot_row(), T0 + 100, RULES)
    assert step.verdicts == () and step.state.tracked.deadline_ms == AWAITING_SNAPSHOT
    assert pending_deadline(step.state) is None and expires_at(step.state, RULES) is None
    assert step.state.snapshot[:3] == ("s1", True, False)
    paired = on_cloud(step.state, scanned(), T0 + 200, RULES)
    assert statuses(paired) == [(Status.MATCH, False)] and paired.verdicts[0].snapshot_id == "s1"
    assert paired.state.snapshot[:4] == ("s1", True, True, 3)


def test_row_23_a_snapshot_row_requests_no_lookup_its_cloud_side_is_the_scan():
    assert on_onprem(None, snapshot_row(), T0, LOOKUPS).lookups == ()


def test_row_24_a_snapshot_row_is_not_judged_by_a_cloud_observation_older_than_its_read():
    held = on_cloud(None, cloud(ts=T0 - 5_000), T0 - 4_000, RULES).state
    step = on_onprem(held, snapshot_row(), T0, RULES)
    assert step.verdicts == ()  # the cloud held the same hash before; it may have changed since
    scan = on_cloud(step.state, scanned(digest=H2), T0 + 600, RULES)
    assert statuses(scan) == []  # a differing scan waits for the run's completion, and Topic-1 past it
    assert statuses(on_snapshot_complete(scan.state, T0, T0 + 30_600, RULES)) == [(Status.MISMATCH, False)]


def test_row_25_at_completion_a_row_missing_from_the_scan_is_missing_cloud():
    state = on_onprem(None, snapshot_row(), T0, RULES).state
    step = on_snapshot_complete(state, T0, T0 + 9_000, RULES)
    assert statuses(step) == [(Status.MISSING_CLOUD, False)]
    assert step.verdicts[0].reason == "in the on-prem snapshot, not in the cloud snapshot"
    assert step.state.snapshot.judged and on_snapshot_complete(step.state, T0, T0 + 9_500, RULES).state is step.state


def test_row_25_with_lookups_the_missing_row_is_rechecked_before_the_verdict():
    state = on_onprem(None, snapshot_row(), T0, LOOKUPS).state
    step = on_snapshot_complete(state, T0, T0 + 9_000, LOOKUPS)
    assert step.verdicts == () and [lookup.attempt for lookup in step.lookups] == [1]
    assert pending_deadline(step.state) == T0 + 9_000 + 1_000 + 30_000  # a real deadline now
    answered = on_cloud(step.state, cloud(digest=None, ts=T0 + 10_500), T0 + 10_600, LOOKUPS)
    assert statuses(answered) == [] and pending_deadline(answered.state) == T0 + 10_500 + 30_000
    assert statuses(on_deadline(answered.state, T0 + 40_500, LOOKUPS)) == [(Status.MISSING_CLOUD, False)]


def test_row_26_a_row_only_the_cloud_scan_found_is_extra_in_cloud():
    state = on_cloud(None, scanned(), T0, RULES).state
    waiting = on_snapshot_complete(state, T0 - 1_000, T0 + 30_499, RULES)
    assert waiting.state is state  # a CREATE committed before the scan may still be on its way through Topic-1
    step = on_snapshot_complete(state, T0 - 1_000, T0 + 30_500, RULES)
    assert statuses(step) == [(Status.EXTRA_IN_CLOUD, False)]
    verdict = step.verdicts[0]
    assert verdict.snapshot_id == "s1" and verdict.hash_onprem is None and verdict.hash_cloud == f"v2:{H1}"


def test_row_27_a_stream_event_since_the_snapshot_began_speaks_for_a_cloud_only_row():
    created = on_onprem(None, event(action=Action.CREATE, ts=T0 + 100), T0 + 100, RULES).state
    state = on_cloud(created, scanned(ts=T0 + 200), T0 + 200, RULES).state
    spoken_for = on_snapshot_complete(state, T0, T0 + 9_000, RULES)
    assert spoken_for.verdicts == () and spoken_for.state.tracked is state.tracked  # no EXTRA_IN_CLOUD
    assert spoken_for.state.snapshot.judged  # judged: a re-sweep skips it
    older = on_onprem(None, event(ts=T0 - 10_000), T0 - 10_000, RULES).state
    stale = on_cloud(older, scanned(ts=T0 + 200), T0 + 200, RULES).state
    assert statuses(on_snapshot_complete(stale, T0, T0 + 30_200, RULES)) == [(Status.EXTRA_IN_CLOUD, False)]


def test_row_28_newest_wins_a_stream_event_after_the_snapshot_row_supersedes_it():
    state = on_onprem(None, snapshot_row(), T0, RULES).state
    step = on_onprem(state, event(digest=H2, ts=T0 + 1_000), T0 + 1_000, RULES)
    assert statuses(step) == [(Status.SUPERSEDED, False)] and step.verdicts[0].snapshot_id == "s1"
    assert step.state.snapshot.onprem  # it still counts as received on the on-prem side
    assert on_snapshot_complete(step.state, T0, T0 + 9_000, RULES).verdicts == ()
    older_row = on_onprem(step.state, snapshot_row(ts=T0 - 1, event_id="s0:k"), T0 + 1_100, RULES)
    assert statuses(older_row) == [(Status.SUPERSEDED, False)]


def test_row_29_a_verified_delete_confirmed_by_a_not_found_after_it():
    step = on_onprem(None, event(digest=None, action=Action.DELETE), T0 + 1_000, DELETES)
    assert step.verdicts == () and pending_deadline(step.state) is not None
    assert statuses(on_cloud(step.state, cloud(digest=None), T0 + 2_000, DELETES)) == [(Status.DELETE_CONFIRMED, False)]


def test_row_30_a_row_still_in_the_cloud_after_the_grace_is_delete_not_propagated_then_late_confirmed():
    state = on_onprem(None, event(digest=None, action=Action.DELETE), T0 + 1_000, DELETES).state
    present = on_cloud(state, cloud(), T0 + 2_000, DELETES)
    assert present.verdicts == ()  # replication lags: wait for the deadline
    due = on_deadline(present.state, present.state.tracked.deadline_ms, DELETES)
    assert statuses(due) == [(Status.DELETE_NOT_PROPAGATED, False)]
    late = on_cloud(due.state, cloud(digest=None, ts=T0 + 200_000), T0 + 200_000, DELETES)
    assert statuses(late) == [(Status.DELETE_CONFIRMED, True)]


def test_row_30_with_lookups_a_present_row_is_rechecked_before_not_propagated():
    rules = DELETES._replace(lookups=True, rechecks=1)
    step = on_onprem(None, event(digest=None, action=Action.DELETE), T0 + 1_000, rules)
    assert [lookup.attempt for lookup in step.lookups] == [0]
    due = on_deadline(on_cloud(step.state, cloud(), T0 + 2_000, rules).state, T0 + 200_000, rules)
    assert due.verdicts == () and [lookup.attempt for lookup in due.lookups] == [1]


def test_row_6_still_holds_with_verification_off():
    step = on_onprem(None, event(digest=None, action=Action.DELETE), T0, RULES)
    assert statuses(step) == [(Status.SKIPPED_DELETE, False)]


def test_row_31_a_tombstone_is_the_delete_of_its_keyed_pk():
    raw = tombstone_event(b"42", 3, 17, T0)
    parsed = parse_onprem(raw)
    assert (parsed.event_id, parsed.pk, parsed.action, parsed.event_ts) == ("tombstone:3:17", "42", Action.DELETE, T0)
    debezium = parse_onprem(tombstone_event(b'{"schema": {}, "payload": {"region": "eu", "id": 7}}', 0, 1, T0))
    assert debezium.pk == '["eu","7"]'
    assert parse_onprem(tombstone_event(b"text-key", 0, 1, T0)).pk == "text-key"
    empty = tombstone_event(None, 0, 1, T0)
    assert isinstance(empty, Rejection) and empty.reason is Reason.EMPTY_VALUE


def test_row_31_debeziums_tombstone_after_its_delete_event_is_the_same_delete():
    state = on_onprem(None, event(digest=None, action=Action.DELETE), T0, RULES).state
    tombstone = OnPremEvent("tombstone:0:9", "k", Action.DELETE, None, T0 + 5)
    assert on_onprem(state, tombstone, T0 + 10, RULES).duplicate


def test_row_32_re_verification_rereads_a_settled_match_and_finds_it_unchanged():
    matched = on_cloud(on_onprem(None, event(), T0 + 1_000, LOOKUPS).state, cloud(), T0 + 2_000, LOOKUPS).state
    assert matched.tracked.status == "MATCH"
    again = reverify(matched, T0 + 100_000, LOOKUPS)
    assert [lookup.attempt for lookup in again.lookups] == [0] and pending_deadline(again.state) is not None
    answer = on_cloud(again.state, cloud(ts=T0 + 100_500), T0 + 100_600, LOOKUPS)
    assert answer.verdicts == () and answer.reverified and answer.state.tracked.status == "MATCH"
    assert reverify(answer.state, T0 + 200_000, RULES) is None  # no lookups, no re-reads


def test_row_33_drift_after_a_match_is_cloud_drift_after_rechecks_and_a_vanished_row_cloud_vanished():
    matched = on_cloud(on_onprem(None, event(), T0 + 1_000, LOOKUPS).state, cloud(), T0 + 2_000, LOOKUPS).state
    again = reverify(matched, T0 + 100_000, LOOKUPS).state
    first = on_cloud(again, cloud(digest=H2, ts=T0 + 100_500), T0 + 100_600, LOOKUPS)
    assert first.verdicts == () and [lookup.attempt for lookup in first.lookups] == [1]
    final = on_cloud(first.state, cloud(digest=H2, ts=T0 + 102_600), T0 + 102_700, LOOKUPS)
    assert final.verdicts == () and pending_deadline(final.state) == T0 + 132_600  # waits for Topic-1
    final = on_deadline(final.state, T0 + 132_600, LOOKUPS)
    assert statuses(final) == [(Status.CLOUD_DRIFT, False)] and final.verdicts[0].rechecks == 1
    gone = on_cloud(
        on_cloud(again, cloud(digest=None, ts=T0 + 100_500), T0 + 100_600, LOOKUPS).state,
        cloud(digest=None, ts=T0 + 102_600),
        T0 + 102_700,
        LOOKUPS,
    )
    assert statuses(on_deadline(gone.state, T0 + 132_600, LOOKUPS)) == [(Status.CLOUD_VANISHED, False)]


def test_a_drift_a_newer_on_prem_event_explains_is_never_given():
    matched = on_cloud(on_onprem(None, event(), T0 + 1_000, LOOKUPS).state, cloud(), T0 + 2_000, LOOKUPS).state
    again = reverify(matched, T0 + 100_000, LOOKUPS).state
    first = on_cloud(again, cloud(digest=H2, ts=T0 + 100_500), T0 + 100_600, LOOKUPS).state
    final = on_cloud(first, cloud(digest=H2, ts=T0 + 102_600), T0 + 102_700, LOOKUPS).state
    newer = on_onprem(final, event(event_id="e2", ts=T0 + 100_200, digest=H2), T0 + 103_000, LOOKUPS)
    assert Status.CLOUD_DRIFT not in [v.status for v in newer.verdicts]
    assert Status.CLOUD_DRIFT not in [v.status for v in on_deadline(newer.state, T0 + 200_000, LOOKUPS).verdicts]


def test_row_34_an_unanswered_re_read_leaves_the_match_as_it_was_and_a_new_event_is_not_superseding_it():
    matched = on_cloud(on_onprem(None, event(), T0 + 1_000, LOOKUPS).state, cloud(), T0 + 2_000, LOOKUPS).state
    again = reverify(matched, T0 + 100_000, LOOKUPS).state
    quiet = on_deadline(again, T0 + 100_000 + 30_000 + 30_000 + 60_000, LOOKUPS)
    assert quiet.verdicts == () and quiet.state.tracked.status == "MATCH"
    newer = on_onprem(again, event(event_id="e2", ts=T0 + 100_100, digest=H2), T0 + 100_100, LOOKUPS)
    assert Status.SUPERSEDED not in [v.status for v in newer.verdicts]


def test_snapshot_contract_rows_and_end_markers_parse_and_bad_ones_are_refused():
    row = parse_onprem(
        b'{"event_id":"s1:k","hash_onprem":"' + H1.encode() + b'","partitionColumns":[{"type":"PK","value":"k"}],'
        b'"event_ts":1714564800000,"action":"r","snapshot_id":"s1","range":4}'
    )
    assert (row.action, row.snapshot_id, row.snapshot_range) == (Action.SNAPSHOT, "s1", 4)
    missing = parse_onprem(
        b'{"event_id":"x","hash_onprem":"' + H1.encode() + b'","partitionColumns":[{"type":"PK","value":"k"}],'
        b'"event_ts":1714564800000,"action":"READ"}'
    )
    assert isinstance(missing, Rejection) and missing.reason is Reason.MISSING_FIELD
    end = parse_cloud(b'{"snapshot_id":"s1","snapshot_end":true,"rows":12,"started_ts":1714564800000}')
    assert end == SnapshotEnd("s1", 12, T0)
    for bad in (
        b'{"snapshot_id":"s1","snapshot_end":true,"rows":-1}',
        b'{"snapshot_id":"a b","snapshot_end":true,"rows":1}',
    ):
        assert isinstance(parse_onprem(bad), Rejection)
    scan = parse_cloud(
        b'{"pk":"k","hash_cloud":"' + H1.encode() + b'","cloud_ts":1714564800000,"snapshot_id":"s1","range":2}'
    )
    assert (scan.snapshot_id, scan.snapshot_range) == ("s1", 2)


def test_the_pair_view_shows_a_snapshot_rows_run_and_no_deadline():
    from dqhash.ops.inspection import pair_view

    state = on_onprem(None, snapshot_row(), T0, RULES).state
    view = pair_view("k", 0, state, "http://w")
    assert view["onprem"]["deadline"] is None and view["onprem"]["snapshot_id"] == "s1"
    assert view["snapshot"] == {"snapshot_id": "s1", "onprem": True, "cloud": False, "token_range": 3, "judged": False}


def test_a_mismatch_names_the_columns_whose_digests_differ_when_both_sides_sent_them():
    onprem_digests = {"id": "0" * 16, "name": "1" * 16, "amount": "2" * 16}
    cloud_digests = {"id": "0" * 16, "name": "f" * 16, "amount": "2" * 16, "extra": "3" * 16}
    ev = event()._replace(column_digests=onprem_digests)
    state = on_onprem(None, ev, T0 + 1_000, RULES).state
    mismatch = on_cloud(state, cloud(digest=H2)._replace(column_digests=cloud_digests), T0 + 2_000, RULES)
    mismatch = on_deadline(mismatch.state, T0 + 32_000, RULES)
    assert statuses(mismatch) == [(Status.MISMATCH, False)]
    assert mismatch.verdicts[0].differing_columns == ("extra", "name")
    match = on_cloud(state, cloud()._replace(column_digests=onprem_digests), T0 + 2_000, RULES)
    assert match.verdicts[0].differing_columns == ()
    one_side = on_deadline(on_cloud(state, cloud(digest=H2), T0 + 2_000, RULES).state, T0 + 32_000, RULES)
    assert one_side.verdicts[0].differing_columns == ()  # the cloud sent none: unknown, not "all"
    assert "columns not named: the cloud side sent no per-column digests" in one_side.verdicts[0].reason
    bare = on_onprem(None, event(), T0 + 1_000, RULES).state
    bare = on_deadline(
        on_cloud(bare, cloud(digest=H2)._replace(column_digests=cloud_digests), T0 + 2_000, RULES).state,
        T0 + 32_000,
        RULES,
    )
    assert "columns not named: the on-prem side sent no per-column digests" in bare.verdicts[0].reason
    same = on_cloud(state, cloud(digest=H2)._replace(column_digests=onprem_digests), T0 + 2_000, RULES)
    same = on_deadline(same.state, T0 + 32_000, RULES)
    assert "every digested column is equal" in same.verdicts[0].reason
    from dqhash.core.outputs import audit_record, repair_request

    record = audit_record("k", mismatch.verdicts[0])
    assert record["differing_columns"] == ["extra", "name"]
    assert repair_request(record)["differing_columns"] == ["extra", "name"]


def test_a_snapshot_row_that_matched_and_is_being_re_read_is_not_judged_again_at_completion():
    state = on_cloud(on_onprem(None, snapshot_row(), T0, LOOKUPS).state, scanned(), T0 + 600, LOOKUPS).state
    assert state.tracked.status == "MATCH"
    rereading = reverify(state, T0 + 100_000, LOOKUPS).state
    assert on_snapshot_complete(rereading, T0, T0 + 100_100, LOOKUPS).verdicts == ()


def test_a_scan_read_in_the_same_millisecond_as_a_lookup_is_not_a_duplicate_and_joins_its_run():
    """Two reads of one row in one millisecond, one by a lookup and one by a snapshot scan, are two observations:
    the scan's is no replay of the lookup's (it made the demo count duplicates it never sent)."""
    state = on_cloud(on_onprem(None, event(), T0 + 1_000, RULES).state, cloud(ts=T0 + 2_000), T0 + 2_100, RULES).state
    step = on_cloud(state, scanned(ts=T0 + 2_000), T0 + 2_200, RULES)
    assert not step.duplicate and step.state.snapshot[:3] == ("s1", False, True)
    again = on_cloud(step.state, scanned(ts=T0 + 2_000), T0 + 2_300, RULES)
    assert again.duplicate  # the same scan record, redelivered


def test_a_snapshot_row_judged_when_it_paired_is_marked_judged_then_and_expires_like_any():
    """A row that matched when both sides had shown it is done: its completed run could add nothing, so it is
    marked judged at once and the run's sweep neither judges nor writes it again; it expires after the
    retention, rather than staying in the pair store for good."""
    from dqhash.core.pair_state import expires_at

    state = on_onprem(None, snapshot_row(), T0, RULES).state
    assert not state.snapshot.judged and expires_at(state, RULES) is None  # pending: its run judges it
    state = on_cloud(state, scanned(ts=T0 + 200), T0 + 200, RULES).state
    assert state.tracked.status == "MATCH" and state.snapshot.judged
    assert expires_at(state, RULES) == state.updated_ms + RULES.retention_ms
    assert on_snapshot_complete(state, T0, T0 + 9_000, RULES).state is state  # the sweep: nothing to write
    scan_first = on_cloud(None, scanned(ts=T0 + 200), T0 + 200, RULES).state
    assert not scan_first.snapshot.judged  # cloud-only so far: its run may find it EXTRA_IN_CLOUD
    paired = on_onprem(scan_first, snapshot_row(), T0 + 300, RULES).state
    assert paired.tracked.status == "MATCH" and paired.snapshot.judged  # either side may come first


def test_a_snapshot_row_judged_when_it_paired_is_unmarked_when_its_run_sends_it_again_changed():
    """A publisher that sends a row of the run again, changed: the new row is pending (no scan row answers it
    yet), so the member is unjudged again and the run's sweep judges it, as it would have without the mark."""
    state = on_cloud(on_onprem(None, snapshot_row(), T0, RULES).state, scanned(ts=T0 + 200), T0 + 200, RULES).state
    assert state.snapshot.judged
    again = on_onprem(state, snapshot_row(digest=H2, ts=T0 + 300, event_id="s1:k:again"), T0 + 300, RULES).state
    assert again.tracked.status != "MATCH" and not again.snapshot.judged
    judged = on_snapshot_complete(again, T0, T0 + 90_000, RULES)
    assert statuses(judged) == [(Status.MISMATCH, False)] and judged.state.snapshot.judged


def test_a_snapshot_row_replaced_by_a_newer_stream_event_is_judged_as_its_sweep_would():
    """A newer stream event speaks for the row (the sweep's "nothing" outcome): judged at once; the event's own
    deadline still decides its verdict."""
    state = on_onprem(None, snapshot_row(), T0, RULES).state
    newer = on_onprem(state, event(ts=T0 + 1_000), T0 + 1_000, RULES)
    assert newer.state.snapshot.judged and newer.state.tracked.snapshot_id is None
    assert on_snapshot_complete(newer.state, T0, T0 + 9_000, RULES).state is newer.state
    waiting = on_cloud(None, scanned(ts=T0 + 8_000), T0 + 8_000, RULES).state  # cloud-only, Topic-1 not read that far
    assert on_snapshot_complete(waiting, T0, T0 + 9_000, RULES).state is waiting  # left for a later sweep
