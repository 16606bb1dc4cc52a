"""Classification rules: (state of one PK, incoming fact) → (new state, verdicts).

Pure and deterministic: the caller passes the clock. The rules are tabulated in
``docs/classification.md``; each row there has a test in
``tests/unit/core/test_classify.py``.

What a PK's state holds, and the verdict's shape, are declared in ``dqhash.core.pair_state``; how an event
compares with a cloud observation, and when a problem verdict may be given, in ``dqhash.core.comparison``; a
PK's part in a snapshot run in ``dqhash.core.membership``; the verdict record in ``dqhash.core.verdicts``. Here
each incoming fact meets them.
"""

from __future__ import annotations

from dqhash.core.comparison import compare, due_after, evaluate, unread_until
from dqhash.core.input_records import Action, CloudHash, OnPremEvent
from dqhash.core.membership import joined, judgement, pending_in_run
from dqhash.core.pair_state import (
    AWAITING_SNAPSHOT,
    PENDING,
    SNAPSHOT_READ,
    TOMBSTONE_PREFIX,
    CloudSeen,
    Lookup,
    Membership,
    PairState,
    Rules,
    Step,
    Tracked,
    Verdict,
)
from dqhash.core.statuses import Status as Status  # re-exported: the rules speak of it
from dqhash.core.tuples import build
from dqhash.core.verdicts import describe, make_verdict
from dqhash.core.windows import WindowSpec

#: Fingerprints remembered per PK (two per event: its id and its content).
RECENT_FINGERPRINTS = 16


def on_onprem(state: PairState | None, event: OnPremEvent, now_ms: int, rules: Rules) -> Step:
    """An on-prem event arrives for the PK."""
    recent = state.recent if state else ()
    fingerprints = _fingerprints(event)
    cloud = state.cloud if state else None
    current = state.tracked if state else None
    if _repeats(event, fingerprints, recent, current):
        return Step(state, duplicate=True)
    recent = (recent + fingerprints)[-RECENT_FINGERPRINTS:]
    member = state.snapshot if state else None
    if event.snapshot_id is not None:
        member = joined(member, event.snapshot_id, onprem=True, token_range=event.snapshot_range)
    incoming = _track(event, now_ms, rules.windows)
    if current is not None and event.event_ts < current.event_ts and current.action != SNAPSHOT_READ:
        reason = f"out of order: older than the newest event {current.event_id} of this pk, not compared with newer cloud state"
        verdict = make_verdict(incoming, Status.SUPERSEDED, reason, cloud, now_ms, rules.windows)
        return Step(PairState(current, cloud, recent, now_ms, snapshot=judgement(member, current)), (verdict,))
    verdicts = _replaced(current, event, cloud, now_ms, rules.windows)
    incoming, decided, lookups = _first_look(incoming, event, cloud, now_ms, rules)
    if decided is not None:
        verdicts.append(decided)
    member = judgement(member, incoming)
    return _step(
        build(PairState, (incoming, cloud, recent, now_ms, _NOT_APPLIED, (), (), (), member)), tuple(verdicts), lookups
    )


def _repeats(
    event: OnPremEvent, fingerprints: tuple[str, str], recent: tuple[str, ...], current: Tracked | None
) -> bool:
    """A replayed event (row 7), or Debezium's tombstone right after its delete event: the same delete (row 31)."""
    if fingerprints[0] in recent or fingerprints[1] in recent:
        return True
    return (
        event.action is Action.DELETE
        and current is not None
        and current.action == "DELETE"
        and event.event_id.startswith(TOMBSTONE_PREFIX)
    )


def _replaced(
    current: Tracked | None, event: OnPremEvent, cloud: CloudSeen | None, now_ms: int, windows: WindowSpec
) -> list[Verdict]:
    """What a newer event does to the one it replaces: a pending one is SUPERSEDED (row 9); a settled problem
    verdict the newer event explains is withdrawn (row 35)."""
    if current is None:
        return []
    if current.status == PENDING and not current.reverify:
        reason = f"superseded by newer event {event.event_id} before the cloud confirmed this one"
        return [make_verdict(current, Status.SUPERSEDED, reason, cloud, now_ms, windows)]
    if current.basis_ms is not None and event.event_ts <= current.basis_ms:
        return [_withdrawal(current, event, cloud, now_ms, windows)]
    return []


def _first_look(
    incoming: Tracked, event: OnPremEvent, cloud: CloudSeen | None, now_ms: int, rules: Rules
) -> tuple[Tracked, Verdict | None, tuple[Lookup, ...]]:
    """The new event against the cloud state held: a skipped delete (row 6), a verdict now, or a wait, with the
    lookup that reads its row (row 17)."""
    if event.action is Action.DELETE and not rules.verify_deletes:
        verdict = make_verdict(
            incoming, Status.SKIPPED_DELETE, "delete: no hash comparison", cloud, now_ms, rules.windows
        )
        return incoming._replace(status=Status.SKIPPED_DELETE.value), verdict, ()
    if event.unverifiable is not None:  # row 36: nothing to compare, and nothing a cloud read could decide
        reason = f"not compared: {event.unverifiable}"
        verdict = make_verdict(incoming, Status.UNVERIFIABLE, reason, cloud, now_ms, rules.windows)
        return incoming._replace(status=Status.UNVERIFIABLE.value), verdict, ()
    incoming, decided, lookups = evaluate(incoming, cloud, now_ms, rules, at_deadline=False)
    # a snapshot row's cloud side comes from the snapshot scan: a read per row would double the cloud's load
    if rules.lookups and incoming.status == PENDING and not lookups and event.snapshot_id is None:
        lookups = (Lookup(now_ms + rules.lookup_delay_ms, 0),)
    if lookups:
        incoming = incoming._replace(awaiting_ms=lookups[-1].not_before_ms)
    return incoming, decided, lookups


def on_cloud(state: PairState | None, cloud: CloudHash, now_ms: int, rules: Rules) -> Step:
    """A cloud observation arrives for the PK."""
    hash_ref = cloud.hash
    seen = build(
        CloudSeen,
        (
            hash_ref.version if hash_ref else None,
            hash_ref.digest if hash_ref else None,
            cloud.cloud_ts,
            now_ms,
            cloud.columns_removed,
            cloud.snapshot_id,
            cloud.column_digests,
        ),
    )
    member = state.snapshot if state else None
    if cloud.snapshot_id is not None:
        member = joined(member, cloud.snapshot_id, onprem=False, token_range=cloud.snapshot_range)
    if state is None:
        return _step(build(PairState, (None, seen, (), now_ms, _NOT_APPLIED, (), (), (), member)))
    member = judgement(member, state.tracked)
    held = state.cloud
    if held is not None:
        if seen.cloud_ts < held.cloud_ts:
            return Step(state._replace(snapshot=member) if member is not state.snapshot else state, stale_cloud=True)
        if seen[:3] == held[:3] and seen.snapshot_id == held.snapshot_id:  # a scan's read of the same ms is its own
            return Step(state._replace(snapshot=member) if member is not state.snapshot else state, duplicate=True)
    tracked = state.tracked
    verdict = None
    lookups: tuple[Lookup, ...] = ()
    reverified = False
    if tracked is not None:
        tracked, verdict, lookups, reverified = _observed(tracked, seen, now_ms, rules)
        member = judgement(member, tracked)
    return build(
        Step,
        (
            build(PairState, (tracked, seen, state.recent, now_ms, _NOT_APPLIED, (), (), (), member)),
            (verdict,) if verdict else (),
            False,
            False,
            lookups,
            reverified,
        ),
    )


def _observed(
    tracked: Tracked, seen: CloudSeen, now_ms: int, rules: Rules
) -> tuple[Tracked, Verdict | None, tuple[Lookup, ...], bool]:
    """What a new cloud observation does to the tracked event: answers its read, judges it (rows 1–5, 18–20),
    re-verifies it (rows 32–33) or revises a deadline verdict (row 12). The last item: a re-read found it as it was."""
    if tracked.awaiting_ms is not None and seen.cloud_ts >= tracked.awaiting_ms:
        tracked = tracked._replace(awaiting_ms=None)  # the requested read has been answered
    if tracked.reverify and tracked.status == PENDING:
        if tracked.awaiting_ms is None:  # the re-read's answer (not an older observation on its way)
            return _reverified(tracked, seen, now_ms, rules)
        return tracked, None, (), False
    if tracked.status == PENDING:
        # The answer to a recheck is judged at once: the event already had its grace.
        judged, verdict, lookups = evaluate(tracked, seen, now_ms, rules, at_deadline=tracked.rechecks > 0)
        return judged, verdict, lookups, False
    if tracked.by_deadline and _may_revise(tracked, seen):
        revised, verdict = _revise_late(tracked, seen, now_ms, rules, read_to=None)
        return revised, verdict, (), False
    return tracked, None, (), False


def on_deadline(state: PairState, now_ms: int, rules: Rules, read_to: int | None = None) -> Step:
    """The deadline of the PK's pending event may have passed: decide with what is known.

    ``read_to``: the time up to which every input partition of the pk (Topic-1 included) is known to be read,
    ``now_ms`` unless the caller says otherwise (the sweep passes its horizon). A problem verdict resting on a
    cloud observation waits until then (``_unread_until``).
    """
    tracked = state.tracked
    read_to = now_ms if read_to is None else read_to
    if tracked is None:
        return Step(state)
    if tracked.status != PENDING:
        due = tracked.revision_due_ms
        if due is None or read_to < due or state.cloud is None:
            return Step(state)
        if not _may_revise(tracked, state.cloud):  # the row the revision was due for is gone again: none
            return Step(state._replace(tracked=tracked._replace(revision_due_ms=None), updated_ms=now_ms))
        revised, verdict = _revise_late(tracked, state.cloud, now_ms, rules, read_to)
        return Step(state._replace(tracked=revised, updated_ms=now_ms), (verdict,) if verdict else ())
    if read_to < tracked.deadline_ms:  # not due as far as the inputs are read (a stale index entry, or a lag)
        return Step(state)
    if tracked.awaiting_ms is not None and now_ms < tracked.awaiting_ms + rules.windows.grace_ms + rules.answer_wait_ms:
        # The row's read was asked for and not answered yet (the producer or the cloud topic lags):
        # judging now would call a row missing whose hash is still on its way.
        deferred = tracked._replace(deadline_ms=now_ms + max(1_000, rules.windows.grace_ms // 4))
        return Step(state._replace(tracked=deferred, updated_ms=now_ms))
    if tracked.reverify:
        if tracked.awaiting_ms is None and state.cloud is not None:  # answered: a drift waiting for Topic-1
            tracked, verdict, lookups, _ = _reverified(tracked, state.cloud, now_ms, rules, read_to)
            return _step(state._replace(tracked=tracked, updated_ms=now_ms), (verdict,) if verdict else (), lookups)
        # no answer to the re-read: nothing new is known of the row, it stays as it was verified
        return Step(state._replace(tracked=_settled_match(tracked), updated_ms=now_ms))
    tracked, verdict, lookups = evaluate(tracked, state.cloud, now_ms, rules, at_deadline=True, read_to=read_to)
    return Step(state._replace(tracked=tracked, updated_ms=now_ms), (verdict,) if verdict else (), lookups=lookups)


#: what a completed snapshot makes of a pk that is not a pending row of it (``_cloud_only``)
_NOTHING, _EXTRA, _LATER = "nothing", "extra", "later"


def _cloud_only(state: PairState, member: Membership, started_ts: int | None, read_to: int, rules: Rules) -> str:
    """A cloud-only snapshot row is EXTRA_IN_CLOUD unless it was judged when it paired, a stream event since the
    on-prem side began speaks for it (nothing more to judge), or a CREATE still unread in Topic-1 may (a later
    sweep judges it then)."""
    tracked, cloud = state.tracked, state.cloud
    if member.onprem or not member.cloud or cloud is None or cloud.hash_digest is None:
        return _NOTHING
    if tracked is not None and (
        tracked.snapshot_id == member.snapshot_id or (started_ts is not None and tracked.event_ts >= started_ts)
    ):
        return _NOTHING
    return _EXTRA if read_to >= cloud.cloud_ts + rules.windows.grace_ms else _LATER


def on_snapshot_complete(
    state: PairState, started_ts: int | None, now_ms: int, rules: Rules, read_to: int | None = None
) -> Step:
    """Both sides of the pk's snapshot are complete in its partition: judge what the snapshot alone can tell.

    A snapshot row still pending is judged as at a deadline (with rechecks, as for streaming); a row the
    cloud scan found and the on-prem snapshot did not is EXTRA_IN_CLOUD, unless a stream event since the
    on-prem side began (``started_ts``) speaks for the row: the newest wins. ``read_to`` as for
    :func:`on_deadline`: a cloud-only row is EXTRA_IN_CLOUD only once Topic-1 is read past its scan plus the
    grace (a CREATE not yet read would speak for it); until then it is left for a later sweep.
    """
    read_to = now_ms if read_to is None else read_to
    member = state.snapshot
    if member is None or member.judged:
        return Step(state)
    judged = member._replace(judged=True)
    tracked, cloud = state.tracked, state.cloud
    if pending_in_run(tracked, member):
        tracked, verdict, lookups = evaluate(
            tracked._replace(deadline_ms=now_ms), cloud, now_ms, rules, at_deadline=True, read_to=read_to
        )
        if verdict is not None and verdict.status is Status.MISSING_CLOUD:
            verdict = verdict._replace(reason="in the on-prem snapshot, not in the cloud snapshot")
        return _step(
            state._replace(tracked=tracked, updated_ms=now_ms, snapshot=judged), (verdict,) if verdict else (), lookups
        )
    outcome = _cloud_only(state, member, started_ts, read_to, rules)
    if outcome == _LATER:
        return Step(state)
    if outcome == _NOTHING or cloud is None:  # judged: a re-sweep skips it, and it may expire like any settled pk
        return _step(state._replace(snapshot=judged))
    extra = build(
        Tracked,
        (
            f"snapshot:{member.snapshot_id}",
            cloud.cloud_ts,
            Action.SNAPSHOT._value_,
            None,
            None,
            now_ms,
            now_ms,
            Status.EXTRA_IN_CLOUD._value_,
            False,
            0,
            (),
            None,
            member.snapshot_id,
            False,
            None,
            cloud.cloud_ts,
            False,
            None,
        ),
    )
    reason = "in the cloud snapshot, not in the on-prem snapshot"
    verdict = make_verdict(extra, Status.EXTRA_IN_CLOUD, reason, cloud, now_ms, rules.windows)
    return _step(state._replace(updated_ms=now_ms, snapshot=judged), (verdict,))


def reverify(state: PairState, now_ms: int, rules: Rules) -> Step | None:
    """Read a settled MATCH again (continuous re-verification); None when the pk is not one to re-read."""
    tracked, cloud = state.tracked, state.cloud
    if (
        tracked is None
        or tracked.status != Status.MATCH._value_
        or cloud is None
        or cloud.hash_digest is None
        or not rules.lookups
    ):
        return None
    again = tracked._replace(
        status=PENDING,
        by_deadline=False,
        rechecks=0,
        recheck_results=(),
        deadline_ms=now_ms + rules.windows.grace_ms,
        awaiting_ms=now_ms,
        reverify=True,
    )
    return _step(state._replace(tracked=again, updated_ms=now_ms), (), (Lookup(now_ms, 0),))


def _reverified(
    tracked: Tracked, seen: CloudSeen, now_ms: int, rules: Rules, read_to: int | None = None
) -> tuple[Tracked, Verdict | None, tuple[Lookup, ...], bool]:
    """A re-verification read answered: the row as it was, or drift (after rechecks, and once Topic-1 is read
    past the read: a newer on-prem event may be what the cloud now shows)."""
    if seen.hash_digest == tracked.hash_digest and seen.hash_version == tracked.hash_version:
        return _settled_match(tracked), None, (), True
    if seen.hash_digest is None:
        status, reason = Status.CLOUD_VANISHED, "the row matched, and a re-verification no longer finds it in the cloud"
    else:
        status, reason = Status.CLOUD_DRIFT, "the row matched, and a re-verification reads a different hash"
    if tracked.rechecks < rules.rechecks:
        attempt = tracked.rechecks + 1
        not_before = now_ms + attempt * rules.recheck_backoff_ms
        rechecking = tracked._replace(
            rechecks=attempt,
            recheck_results=tracked.recheck_results + (describe(seen),),
            deadline_ms=not_before + rules.windows.grace_ms,
            awaiting_ms=not_before,
        )
        return rechecking, None, (Lookup(not_before, attempt),), False
    ready = unread_until(status, seen, rules, read_to)
    if ready is not None:
        return tracked._replace(deadline_ms=due_after(ready, now_ms)), None, (), False
    decided = tracked._replace(
        status=status._value_, by_deadline=False, reverify=False, basis_ms=seen.cloud_ts, basis_late=False
    )
    verdict = make_verdict(tracked, status, reason, seen, now_ms, rules.windows)
    return decided, verdict, (), False


def _settled_match(tracked: Tracked) -> Tracked:
    return tracked._replace(
        status=Status.MATCH._value_, rechecks=0, recheck_results=(), awaiting_ms=None, reverify=False
    )


def _may_revise(tracked: Tracked, seen: CloudSeen) -> bool:
    """Row 12 revises a deadline verdict by a cloud observation that found the row (of a DELETE, any): a row not
    found adds nothing to what the deadline already said."""
    return seen.hash_digest is not None or tracked.action == "DELETE"


def _revise_late(
    tracked: Tracked, seen: CloudSeen, now_ms: int, rules: Rules, read_to: int | None
) -> tuple[Tracked, Verdict | None]:
    """Row 12: a verdict decided at the deadline, and a newer cloud observation. A revision that is good news
    is given now; a problem revision waits for Topic-1 like any problem verdict (``revision_due_ms``)."""
    status, _ = compare(tracked, seen, at_deadline=True)
    if status is None or status._value_ == tracked.status:
        return tracked._replace(revision_due_ms=None) if tracked.revision_due_ms is not None else tracked, None
    ready = unread_until(status, seen, rules, read_to)
    if ready is not None:
        return tracked._replace(revision_due_ms=due_after(ready, now_ms)), None
    revised, verdict, _ = evaluate(tracked, seen, now_ms, rules._replace(rechecks=0), True, read_to)
    if verdict is None:
        return tracked._replace(revision_due_ms=None), None
    verdict = verdict._replace(late=True, reason=f"late: {verdict.reason} (after {tracked.status} at the deadline)")
    if revised.basis_ms is not None:
        revised = revised._replace(basis_late=True)
    return revised, verdict


def _withdrawal(
    current: Tracked, event: OnPremEvent, cloud: CloudSeen | None, now_ms: int, windows: WindowSpec
) -> Verdict:
    """A settled problem verdict that a newer on-prem event explains: that event was committed by the time of
    the cloud observation the verdict rested on, so the cloud may have shown it (Topic-1 ran later than the
    grace). The verdict is withdrawn: SUPERSEDED, late, naming how it was counted."""
    reason = (
        f"withdrawn: {current.status} rested on a cloud observation at {current.basis_ms}, and newer event "
        f"{event.event_id} (event_ts {event.event_ts}) was committed by then; Topic-1 delivered it after the grace"
    )
    verdict = make_verdict(current, Status.SUPERSEDED, reason, cloud, now_ms, windows)
    counted = f"LATE_{current.status}" if current.basis_late else current.status
    return verdict._replace(late=True, withdraws=counted)


_NOT_APPLIED = PairState._field_defaults["applied"]


def _step(state: PairState | None, verdicts: tuple[Verdict, ...] = (), lookups: tuple[Lookup, ...] = ()) -> Step:
    """``Step(state, verdicts, lookups=lookups)``: an input record's usual outcome, neither duplicate nor stale."""
    return build(Step, (state, verdicts, False, False, lookups, False))


def _track(event: OnPremEvent, now_ms: int, windows: WindowSpec) -> Tracked:
    hash_ref = event.hash
    snapshot_id = event.snapshot_id
    return build(
        Tracked,
        (
            event.event_id,
            event.event_ts,
            SNAPSHOT_READ if event.snapshot_read else event.action._value_,
            hash_ref.version if hash_ref else None,
            hash_ref.digest if hash_ref else None,
            now_ms,
            windows.deadline(event.event_ts, now_ms) if snapshot_id is None else AWAITING_SNAPSHOT,
            PENDING,
            False,
            0,
            (),
            None,
            snapshot_id,
            False,
            event.column_digests,
            None,
            False,
            None,
        ),
    )


def _fingerprints(event: OnPremEvent) -> tuple[str, str]:
    content = event.hash.digest if event.hash else (event.unverifiable or event.action._value_)
    return ("id:" + event.event_id, f"v:{event.event_ts}:{content}")
