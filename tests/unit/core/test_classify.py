"""One test per row of docs/classification.md, plus invariants over random fact sequences."""

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dqhash.core.classify import Status, on_cloud, on_deadline, on_onprem
from dqhash.core.input_records import Action, CloudHash, HashRef, OnPremEvent
from dqhash.core.pair_state import PENDING, Rules, expires_at, pending_deadline
from dqhash.core.windows import WindowSpec

RULES = Rules(WindowSpec(size_ms=60_000, grace_ms=30_000), retention_ms=3_600_000)
T0 = 1_714_564_800_000  # a window boundary
H1, H2 = "11" * 32, "22" * 32


def event(event_id="e1", ts=T0 + 1_000, digest=H1, action=Action.UPDATE, version="v2"):
    return OnPremEvent(event_id, "pk1", action, HashRef(version, digest) if digest else None, ts)


def cloud(ts=T0 + 2_000, digest=H1, version="v2"):
    return CloudHash("pk1", HashRef(version, digest) if digest else None, ts)


def statuses(step):
    return [(v.status, v.late) for v in step.verdicts]


def pending(ev=None, now=T0 + 1_000):
    step = on_onprem(None, ev or event(), now, RULES)
    assert statuses(step) == []
    return step.state


def deadline_of(state):
    return pending_deadline(state)


def test_row_1_equal_hashes_match_at_once():
    step = on_cloud(pending(), cloud(), T0 + 3_000, RULES)
    assert statuses(step) == [(Status.MATCH, False)]
    assert step.verdicts[0].hash_onprem == step.verdicts[0].hash_cloud == "v2:" + H1


def test_row_2_different_hash_waits_until_topic_1_is_read_past_cloud_ts_plus_grace_then_mismatches():
    step = on_cloud(pending(), cloud(digest=H2), T0 + 3_000, RULES)
    assert statuses(step) == [] and deadline_of(step.state) == T0 + 2_000 + 30_000
    state = step.state
    assert statuses(on_deadline(state, T0 + 32_000, RULES, read_to=T0 + 31_999)) == []  # Topic-1 not read that far
    step = on_deadline(state, T0 + 32_000, RULES, read_to=T0 + 32_000)
    assert statuses(step) == [(Status.MISMATCH, False)]
    assert step.verdicts[0].reason.startswith("hashes differ;") and step.state.tracked.basis_ms == T0 + 2_000


H3 = "33" * 32


def test_row_2_a_cloud_versions_ahead_of_topic_1_gives_no_mismatch_on_any_version():
    """Key lag-00002 of the issue: the cloud hashes of v1, v2, v3 arrive, then the on-prem events."""
    state = None
    for i, digest in enumerate((H1, H2, H3), start=1):
        state = on_cloud(state, cloud(ts=T0 + i * 1_000, digest=digest), T0 + i * 1_000, RULES).state
    verdicts = []
    for i, digest in enumerate((H1, H2, H3), start=1):
        step = on_onprem(state, event(f"e{i}", ts=T0 + i * 1_000, digest=digest), T0 + 4_000 + i, RULES)
        state, verdicts = step.state, verdicts + list(step.verdicts)
    assert [(v.event_id, v.status) for v in verdicts] == [
        ("e1", Status.SUPERSEDED),
        ("e2", Status.SUPERSEDED),
        ("e3", Status.MATCH),
    ]
    assert pending_deadline(state) is None


def test_row_2_a_cloud_that_stays_wrong_or_a_version_behind_is_still_a_mismatch():
    wrong = on_cloud(pending(), cloud(digest=H2), T0 + 3_000, RULES).state
    assert statuses(on_deadline(wrong, deadline_of(wrong), RULES)) == [(Status.MISMATCH, False)]
    behind = on_cloud(pending(event(ts=T0 + 5_000)), cloud(ts=T0 + 2_000, digest=H2), T0 + 6_000, RULES).state
    step = on_deadline(behind, deadline_of(behind), RULES)
    assert statuses(step) == [(Status.MISMATCH, False)] and "never caught up" in step.verdicts[0].reason


def test_row_3_older_snapshot_waits_then_mismatches_at_the_deadline():
    state = on_cloud(pending(), cloud(ts=T0, digest=H2), T0 + 3_000, RULES).state
    assert pending_deadline(state) is not None
    assert statuses(on_deadline(state, deadline_of(state) - 1, RULES)) == []
    step = on_deadline(state, deadline_of(state), RULES)
    assert statuses(step) == [(Status.MISMATCH, False)]
    assert "never caught up" in step.verdicts[0].reason


def test_row_3_older_snapshot_then_newer_matching_hash_matches():
    state = on_cloud(pending(), cloud(ts=T0, digest=H2), T0 + 3_000, RULES).state
    assert statuses(on_cloud(state, cloud(ts=T0 + 5_000), T0 + 6_000, RULES)) == [(Status.MATCH, False)]


def test_row_4_no_cloud_hash_by_the_deadline_is_missing_cloud():
    state = pending()
    assert deadline_of(state) == T0 + 60_000 + 30_000
    assert statuses(on_deadline(state, T0 + 89_999, RULES)) == []
    step = on_deadline(state, T0 + 90_000, RULES)
    assert statuses(step) == [(Status.MISSING_CLOUD, False)]
    assert pending_deadline(step.state) is None
    assert statuses(on_deadline(step.state, T0 + 200_000, RULES)) == []  # never twice


def test_row_4_backfill_gets_its_full_grace_after_arrival():
    old = event(ts=T0 - 3_600_000)
    state = pending(old, now=T0)
    assert deadline_of(state) == T0 + 30_000


def test_row_5_row_not_found_waits_then_missing_cloud():
    state = on_cloud(pending(), cloud(digest=None), T0 + 3_000, RULES).state
    assert pending_deadline(state) is not None
    step = on_deadline(state, deadline_of(state), RULES)
    assert statuses(step) == [(Status.MISSING_CLOUD, False)]
    assert step.verdicts[0].reason == "row not found in the cloud"


def test_row_5_not_found_then_found_inside_grace_matches():
    state = on_cloud(pending(), cloud(digest=None), T0 + 3_000, RULES).state
    assert statuses(on_cloud(state, cloud(ts=T0 + 4_000), T0 + 80_000, RULES)) == [(Status.MATCH, False)]


def test_row_6_delete_is_skipped_without_comparison():
    step = on_onprem(None, event(action=Action.DELETE, digest=None), T0, RULES)
    assert statuses(step) == [(Status.SKIPPED_DELETE, False)]
    assert pending_deadline(step.state) is None
    assert statuses(on_cloud(step.state, cloud(digest=H2), T0 + 5_000, RULES)) == []


def test_row_7_replayed_event_is_a_duplicate_by_id_or_content():
    state = pending()
    same_id = on_onprem(state, event(ts=T0 + 9_000, digest=H2), T0 + 2_000, RULES)
    assert same_id.duplicate and same_id.verdicts == () and same_id.state == state
    same_content = on_onprem(state, event(event_id="other"), T0 + 2_000, RULES)
    assert same_content.duplicate and same_content.state == state


def test_row_7_replay_after_classification_is_still_a_duplicate():
    state = on_cloud(pending(), cloud(), T0 + 3_000, RULES).state
    assert on_onprem(state, event(), T0 + 500_000, RULES).duplicate


def test_row_8_out_of_order_event_is_superseded_not_compared():
    state = on_cloud(
        pending(event("e2", ts=T0 + 5_000, digest=H2)), cloud(ts=T0 + 6_000, digest=H2), T0 + 7_000, RULES
    ).state
    step = on_onprem(state, event("e1", ts=T0 + 1_000, digest=H1), T0 + 8_000, RULES)
    assert statuses(step) == [(Status.SUPERSEDED, False)]
    assert step.verdicts[0].event_id == "e1" and "out of order" in step.verdicts[0].reason
    assert step.state.tracked.event_id == "e2"


def test_row_9_newer_event_supersedes_a_pending_one():
    step = on_onprem(pending(), event("e2", ts=T0 + 5_000, digest=H2), T0 + 6_000, RULES)
    assert statuses(step) == [(Status.SUPERSEDED, False)]
    assert step.verdicts[0].event_id == "e1"
    assert step.state.tracked.event_id == "e2" and step.state.tracked.status == PENDING


def test_row_10_hash_version_mismatch_is_its_own_outcome():
    step = on_cloud(pending(), cloud(version="v1"), T0 + 3_000, RULES)
    assert statuses(step) == [(Status.HASH_VERSION_MISMATCH, False)]


def test_row_11_cloud_first_then_event_compares_at_once():
    state = on_cloud(None, cloud(ts=T0 + 2_000), T0 + 2_000, RULES).state
    assert statuses(on_onprem(state, event(), T0 + 3_000, RULES)) == [(Status.MATCH, False)]
    state = on_cloud(None, cloud(ts=T0 + 2_000, digest=H2), T0 + 2_000, RULES).state
    step = on_onprem(state, event(), T0 + 3_000, RULES)
    assert statuses(step) == [] and deadline_of(step.state) == T0 + 2_000 + 30_000  # the differing hash waits
    assert statuses(on_deadline(step.state, T0 + 32_000, RULES)) == [(Status.MISMATCH, False)]


def test_row_12_late_hash_after_missing_cloud_reclassifies_once_flagged_late():
    state = pending()
    state = on_deadline(state, deadline_of(state), RULES).state
    step = on_cloud(state, cloud(ts=T0 + 95_000), T0 + 95_000, RULES)
    assert statuses(step) == [(Status.MATCH, True)]
    assert "late" in step.verdicts[0].reason
    assert statuses(on_cloud(step.state, cloud(ts=T0 + 99_000, digest=H2), T0 + 99_000, RULES)) == []


def test_row_12_a_late_mismatch_waits_for_topic_1_and_can_still_turn_into_a_late_match():
    state = pending()
    state = on_deadline(state, deadline_of(state), RULES).state
    step = on_cloud(state, cloud(ts=T0 + 95_000, digest=H2), T0 + 95_000, RULES)
    assert statuses(step) == [] and pending_deadline(step.state) == T0 + 125_000
    assert expires_at(step.state, RULES) is None  # a revision is pending
    assert statuses(on_deadline(step.state, T0 + 125_000, RULES, read_to=T0 + 124_999)) == []
    step = on_deadline(step.state, T0 + 125_000, RULES)
    assert statuses(step) == [(Status.MISMATCH, True)] and pending_deadline(step.state) is None
    step = on_cloud(step.state, cloud(ts=T0 + 126_000), T0 + 126_000, RULES)
    assert statuses(step) == [(Status.MATCH, True)]


def test_row_12_a_late_revision_the_next_on_prem_event_explains_is_never_given():
    """pk 4716 of the issue: the next version's cloud hash is read 1 ms before its on-prem event."""
    state = pending()
    state = on_deadline(state, deadline_of(state), RULES).state  # MISSING_CLOUD
    state = on_cloud(state, cloud(ts=T0 + 95_000, digest=H2), T0 + 95_000, RULES).state
    step = on_onprem(state, event("e2", ts=T0 + 94_000, digest=H2), T0 + 95_001, RULES)
    assert statuses(step) == [(Status.MATCH, False)]
    assert statuses(on_deadline(step.state, T0 + 200_000, RULES)) == []


def test_row_35_a_problem_verdict_a_newer_event_explains_is_withdrawn_and_says_how_it_was_counted():
    state = on_cloud(pending(), cloud(digest=H2), T0 + 3_000, RULES).state
    state = on_deadline(state, T0 + 32_000, RULES).state  # MISMATCH resting on the cloud read at T0 + 2_000
    later = on_onprem(state, event("e2", ts=T0 + 2_500, digest=H2), T0 + 40_000, RULES)
    assert statuses(later) == [(Status.MATCH, False)]  # committed after the read: it explains nothing
    step = on_onprem(state, event("e2", ts=T0 + 1_500, digest=H2), T0 + 40_000, RULES)  # Topic-1 beyond the grace
    assert statuses(step) == [(Status.SUPERSEDED, True), (Status.MATCH, False)]
    withdrawal = step.verdicts[0]
    assert withdrawal.event_id == "e1" and withdrawal.withdraws == "MISMATCH" and "withdrawn" in withdrawal.reason
    late = on_deadline(on_deadline(pending(), T0 + 90_000, RULES).state, T0 + 90_000, RULES).state
    late = on_cloud(late, cloud(ts=T0 + 95_000, digest=H2), T0 + 95_000, RULES).state
    late = on_deadline(late, T0 + 125_000, RULES).state  # a late MISMATCH
    step = on_onprem(late, event("e2", ts=T0 + 94_000, digest=H2), T0 + 130_000, RULES)
    assert step.verdicts[0].withdraws == "LATE_MISMATCH"


def unverifiable(event_id="e2", ts=T0 + 2_000, why="column 'name': Debezium did not send its value (TOAST)"):
    return OnPremEvent(event_id, "pk1", Action.UPDATE, None, ts, unverifiable=why)


def test_row_36_an_unverifiable_change_is_never_compared_and_replaces_the_older_event():
    step = on_onprem(pending(), unverifiable(), T0 + 2_000, RULES._replace(lookups=True))
    assert statuses(step) == [(Status.SUPERSEDED, False), (Status.UNVERIFIABLE, False)]
    verdict = step.verdicts[1]
    assert verdict.event_id == "e2" and "TOAST" in verdict.reason and verdict.hash_onprem is None
    assert step.lookups == () and pending_deadline(step.state) is None  # nothing a read or a timer could decide
    differs = on_cloud(step.state, cloud(ts=T0 + 3_000, digest=H2), T0 + 3_000, RULES)
    assert statuses(differs) == []  # a cloud hash that differs is not a MISMATCH
    assert statuses(on_deadline(differs.state, T0 + 200_000, RULES)) == []
    assert statuses(on_onprem(differs.state, event("e3", ts=T0 + 4_000, digest=H2), T0 + 5_000, RULES)) == [
        (Status.MATCH, False)
    ]  # the next change is compared as usual
    assert expires_at(differs.state, RULES) is not None
    again = on_onprem(step.state, unverifiable(), T0 + 6_000, RULES)
    assert again.duplicate  # redelivered: counted once
    other = on_onprem(step.state, unverifiable("e4", why="column 'photo': TOAST"), T0 + 6_000, RULES)
    assert statuses(other) == [(Status.UNVERIFIABLE, False)]  # another change in the same millisecond is its own


def snapshot_read(event_id="r1", ts=T0 + 9_000, digest=H1):
    """A row Debezium's snapshot read at ``ts``: its values are those of the snapshot's earlier consistent point."""
    return OnPremEvent(event_id, "pk1", Action.UPSERT, HashRef("v2", digest), ts, snapshot_read=True)


def test_row_37_a_change_after_a_snapshot_read_is_newer_whatever_its_commit_time():
    read = on_onprem(None, snapshot_read(), T0 + 9_000, RULES).state
    # committed at T0 + 5_000, between the snapshot's consistent point and the read, streamed after the read
    step = on_onprem(read, event("c1", ts=T0 + 5_000, digest=H2), T0 + 10_000, RULES)
    assert statuses(step) == [(Status.SUPERSEDED, False)] and step.verdicts[0].event_id == "r1"
    assert step.state.tracked.event_id == "c1"  # the change is tracked, not refused as out of order
    assert statuses(on_cloud(step.state, cloud(ts=T0 + 11_000, digest=H2), T0 + 11_000, RULES)) == [
        (Status.MATCH, False)
    ]
    plain = on_onprem(None, snapshot_read()._replace(snapshot_read=False), T0 + 9_000, RULES).state
    older = on_onprem(plain, event("c1", ts=T0 + 5_000, digest=H2), T0 + 10_000, RULES)
    assert older.verdicts[0].event_id == "c1" and "out of order" in older.verdicts[0].reason  # row 8 otherwise
    settled = on_cloud(read, cloud(ts=T0 + 12_000, digest=H2), T0 + 12_000, RULES).state
    settled = on_deadline(settled, T0 + 200_000, RULES).state  # MISMATCH resting on the cloud read at T0 + 12_000
    assert settled.tracked.status == "MISMATCH" and settled.tracked.action == "READ"
    withdrawn = on_onprem(settled, event("c1", ts=T0 + 5_000, digest=H2), T0 + 200_001, RULES)
    assert withdrawn.verdicts[0].withdraws == "MISMATCH"  # the change the cloud showed explains it


def test_row_12_late_not_found_does_not_reclassify():
    state = pending()
    state = on_deadline(state, deadline_of(state), RULES).state
    assert statuses(on_cloud(state, cloud(ts=T0 + 95_000, digest=None), T0 + 95_000, RULES)) == []


def test_row_13_after_an_on_time_verdict_new_cloud_hashes_do_not_reclassify():
    state = on_cloud(pending(), cloud(), T0 + 3_000, RULES).state  # MATCH on time
    step = on_cloud(state, cloud(ts=T0 + 4_000, digest=H2), T0 + 4_000, RULES)
    assert statuses(step) == [] and step.state.cloud.cloud_ts == T0 + 4_000


def test_row_14_older_cloud_observation_is_ignored_as_stale():
    state = on_cloud(None, cloud(ts=T0 + 5_000), T0, RULES).state
    step = on_cloud(state, cloud(ts=T0 + 4_000, digest=H2), T0, RULES)
    assert step.stale_cloud and step.state == state


def test_row_15_identical_cloud_observation_is_a_duplicate():
    state = on_cloud(None, cloud(), T0, RULES).state
    step = on_cloud(state, cloud(), T0 + 1, RULES)
    assert step.duplicate and step.state == state


def test_row_16_cloud_only_pk_waits_without_classification():
    step = on_cloud(None, cloud(), T0, RULES)
    assert statuses(step) == [] and step.state.tracked is None
    assert pending_deadline(step.state) is None


def test_verdict_carries_window_and_timing():
    verdict = on_cloud(pending(now=T0 + 1_500), cloud(), T0 + 4_000, RULES).verdicts[0]
    assert (verdict.window_start, verdict.window_end) == (T0, T0 + 60_000)
    assert (verdict.arrived_ms, verdict.classified_ms) == (T0 + 1_500, T0 + 4_000)


def test_settled_state_expires_after_retention_pending_never():
    state = pending()
    assert expires_at(state, RULES) is None
    settled = on_cloud(state, cloud(), T0 + 3_000, RULES).state
    assert expires_at(settled, RULES) == T0 + 3_000 + RULES.retention_ms


def test_fingerprints_are_bounded():
    state = None
    for i in range(100):
        state = on_onprem(state, event(f"e{i}", ts=T0 + i, digest=f"{i:064x}"), T0 + i, RULES).state
    assert len(state.recent) <= 16


# --- invariants over random sequences of facts ---------------------------------------------

facts = st.lists(
    st.one_of(
        st.tuples(st.just("onprem"), st.integers(0, 5), st.integers(0, 4), st.sampled_from([H1, H2, None])),
        st.tuples(st.just("cloud"), st.integers(0, 6), st.sampled_from([H1, H2, None]), st.sampled_from(["v1", "v2"])),
        st.tuples(st.just("tick"), st.integers(0, 200)),
    ),
    max_size=30,
)


def run(sequence):
    state, now, verdicts = None, T0, []
    for fact in sequence:
        now += 1_000
        if fact[0] == "onprem":
            _, n, ts, digest = fact
            action = Action.DELETE if digest is None else Action.UPDATE
            ev = event(f"e{n}", ts=T0 + ts * 10_000, digest=digest, action=action)
            step = on_onprem(state, ev, now, RULES)
        elif fact[0] == "cloud":
            _, ts, digest, version = fact
            step = on_cloud(state, cloud(ts=T0 + ts * 10_000, digest=digest, version=version), now, RULES)
        else:
            now += fact[1] * 1_000
            step = on_deadline(state, now, RULES) if state else None
            if step is None:
                continue
        state = step.state
        verdicts.extend(step.verdicts)
    return state, verdicts


@settings(max_examples=500)
@given(facts)
# a revision falls due after the cloud stopped finding the row: no late MISSING_CLOUD (row 12 needs a found row)
@example(
    [
        ("onprem", 0, 0, H2),
        ("tick", 88),
        ("cloud", 0, H1, "v1"),
        ("cloud", 0, H1, "v2"),
        ("cloud", 0, None, "v1"),
        ("tick", 0),
    ]
)
def test_an_event_is_classified_at_most_once_on_time(sequence):
    _, verdicts = run(sequence)
    on_time = [(v.event_id, v.event_ts) for v in verdicts if not v.late]
    assert len(on_time) == len(set(on_time))
    by_event = {}
    for v in verdicts:
        by_event.setdefault((v.event_id, v.event_ts), []).append(v)
    for history in by_event.values():
        assert not history[0].late  # a late verdict only ever revises an earlier one
        for before, after in zip(history, history[1:]):
            assert after.late and after.status != before.status  # re-classified only when the outcome changes
            assert after.status in (Status.MATCH, Status.MISMATCH, Status.HASH_VERSION_MISMATCH, Status.SUPERSEDED)
            assert after.status is not Status.SUPERSEDED or after.withdraws  # a late SUPERSEDED is a withdrawal


#: problem verdicts that rest on a cloud observation (docs/classification.md, "No verdict ahead of Topic-1")
RESTING_ON_CLOUD = {
    Status.MISMATCH,
    Status.MISSING_CLOUD,
    Status.DELETE_NOT_PROPAGATED,
    Status.CLOUD_DRIFT,
    Status.CLOUD_VANISHED,
}


@settings(max_examples=500)
@given(facts)
def test_no_problem_verdict_rests_on_a_cloud_observation_topic_1_is_not_read_past(sequence):
    """Given by a record's arrival: never. Given by a sweep: only when it read Topic-1 past cloud_ts + grace."""
    state, now = None, T0
    for fact in sequence:
        now += 1_000
        if fact[0] == "tick":
            now += fact[1] * 1_000
            if state is None:
                continue
            step = on_deadline(state, now, RULES)
            problems = [v for v in step.verdicts if v.status in RESTING_ON_CLOUD and v.cloud_ts is not None]
            assert all(v.cloud_ts + RULES.windows.grace_ms <= now for v in problems)
            state = step.state
        else:
            state, verdicts = run_one(state, fact, now)
            assert not [v for v in verdicts if v.status in RESTING_ON_CLOUD and v.cloud_ts is not None]


def run_one(state, fact, now):
    """One record-arrival fact of ``run``: (new state, its verdicts)."""
    if fact[0] == "onprem":
        _, n, ts, digest = fact
        action = Action.DELETE if digest is None else Action.UPDATE
        step = on_onprem(state, event(f"e{n}", ts=T0 + ts * 10_000, digest=digest, action=action), now, RULES)
    else:
        _, ts, digest, version = fact
        step = on_cloud(state, cloud(ts=T0 + ts * 10_000, digest=digest, version=version), now, RULES)
    return step.state, step.verdicts


@settings(max_examples=500)
@given(facts)
def test_every_tracked_event_is_eventually_decided(sequence):
    state, verdicts = run(sequence)
    if state is None or pending_deadline(state) is None:
        return
    step = on_deadline(state, pending_deadline(state), RULES)
    if pending_deadline(step.state) is not None:  # deferred once: the newest cloud observation came after the first
        step = on_deadline(step.state, pending_deadline(step.state), RULES)
    assert pending_deadline(step.state) is None
    # a pending event gets its verdict; a pending late revision (row 12) is given or, if the newest cloud
    # observation no longer supports it, dropped
    assert len(step.verdicts) == 1 if state.tracked.status == PENDING else len(step.verdicts) <= 1


# --- rows 17-20: lookups and rechecks (dqhash's own cloud producer) ---------------------------

CHECKED = RULES._replace(lookups=True, lookup_delay_ms=500, rechecks=2, recheck_backoff_ms=2_000)


def test_row_17_each_event_requests_a_lookup_after_the_replication_delay():
    step = on_onprem(None, event(), T0 + 1_000, CHECKED)
    assert [(l.not_before_ms, l.attempt) for l in step.lookups] == [(T0 + 1_500, 0)]
    assert on_onprem(None, event(action=Action.DELETE, digest=None), T0, CHECKED).lookups == ()
    assert on_onprem(None, event(), T0, RULES).lookups == ()  # no producer, no lookups


def test_row_18_mismatch_is_rechecked_and_a_late_replica_turns_into_match():
    state = on_onprem(None, event(), T0 + 1_000, CHECKED).state
    step = on_cloud(state, cloud(ts=T0 + 1_600, digest=H2), T0 + 1_600, CHECKED)
    assert statuses(step) == [] and [(l.attempt, l.not_before_ms) for l in step.lookups] == [(1, T0 + 3_600)]
    step = on_cloud(step.state, cloud(ts=T0 + 3_700), T0 + 3_700, CHECKED)
    [verdict] = step.verdicts
    assert (verdict.status, verdict.rechecks) == (Status.MATCH, 1)
    assert verdict.recheck_results == (f"v2:{H2[:12]}@{T0 + 1_600}", f"v2:{H1[:12]}@{T0 + 3_700}")


def test_row_19_truly_divergent_row_is_mismatch_after_k_rechecks():
    state = on_onprem(None, event(), T0 + 1_000, CHECKED).state
    attempts = []
    for i in range(3):
        step = on_cloud(state, cloud(ts=T0 + 2_000 + i * 5_000, digest=H2), T0 + 2_000 + i * 5_000, CHECKED)
        attempts += [l.attempt for l in step.lookups]
        state = step.state
    assert step.verdicts == ()  # the last answer still differs: it waits for Topic-1 like any MISMATCH
    [verdict] = on_deadline(state, pending_deadline(state), CHECKED).verdicts
    assert attempts == [1, 2] and verdict.status is Status.MISMATCH and verdict.rechecks == 2
    assert len(verdict.recheck_results) == 3


def test_row_20_missing_cloud_at_the_deadline_is_rechecked_first():
    state = on_onprem(None, event(), T0 + 1_000, CHECKED).state
    state = on_cloud(state, cloud(ts=T0 + 1_600, digest=None), T0 + 1_600, CHECKED).state  # first read: not found
    deadline = pending_deadline(state)
    step = on_deadline(state, deadline, CHECKED)
    assert statuses(step) == [] and [l.attempt for l in step.lookups] == [1]
    assert pending_deadline(step.state) == deadline + 2_000 + 30_000
    step = on_cloud(step.state, cloud(ts=deadline + 2_100, digest=None), deadline + 2_100, CHECKED)
    assert [l.attempt for l in step.lookups] == [2]
    step = on_cloud(step.state, cloud(ts=deadline + 6_200, digest=None), deadline + 6_200, CHECKED)
    assert step.verdicts == () and pending_deadline(step.state) == deadline + 6_200 + 30_000
    [verdict] = on_deadline(step.state, deadline + 6_200 + 30_000, CHECKED).verdicts
    assert verdict.status is Status.MISSING_CLOUD and verdict.rechecks == 2
    assert all(result.startswith("not_found@") for result in verdict.recheck_results)


def test_row_22_a_deadline_waits_for_an_unanswered_lookup_but_not_forever():
    state = on_onprem(None, event(), T0 + 1_000, CHECKED).state
    deadline = pending_deadline(state)
    step = on_deadline(state, deadline, CHECKED)  # the read was asked for at T0 + 1500 and is not answered
    assert statuses(step) == [] and pending_deadline(step.state) > deadline
    answered = on_cloud(step.state, cloud(ts=T0 + 1_600), deadline + 100, CHECKED)
    assert statuses(answered) == [(Status.MATCH, False)]
    limit = T0 + 1_500 + 30_000 + CHECKED.answer_wait_ms
    stalled = step.state
    while pending_deadline(stalled) is not None and pending_deadline(stalled) < limit:
        stalled = on_deadline(stalled, pending_deadline(stalled), CHECKED).state
    final = on_deadline(stalled, max(limit, pending_deadline(stalled) or limit), CHECKED)
    assert [l.attempt for l in final.lookups] == [1]  # the producer stalls: rechecks, then MISSING_CLOUD


def test_row_21_a_mismatch_caused_by_a_removed_cloud_column_says_so():
    seen = CloudHash("pk1", HashRef("v2", H2), T0 + 2_000, None, ("amount",))
    waiting = on_cloud(pending(), seen, T0 + 3_000, RULES).state
    [verdict] = on_deadline(waiting, deadline_of(waiting), RULES).verdicts
    assert verdict.status is Status.MISMATCH and "column_removed" in verdict.reason and "amount" in verdict.reason


def test_a_deferred_verdict_is_never_due_at_or_before_the_moment_it_was_deferred():
    """A sweep that ran before the record was applied (a tick read again after a failover) must not reach it."""
    old = on_cloud(pending(event(ts=T0 - 3_600_000), now=T0), cloud(ts=T0 - 3_500_000, digest=H2), T0 + 5, RULES)
    assert statuses(old) == [] and pending_deadline(old.state) == T0 + 6
    state = on_deadline(pending(), T0 + 90_000, RULES).state  # MISSING_CLOUD at the deadline
    late = on_cloud(state, cloud(ts=T0 + 1_000, digest=H2), T0 + 95_000, RULES)
    assert statuses(late) == [] and pending_deadline(late.state) == T0 + 95_001
