"""Classification rules: (state of one PK, incoming fact) → (new state, verdicts).

Pure and deterministic: the caller passes the clock. The rules are tabulated in
``docs/classification.md``; each row there has a test in
``tests/unit/core/test_classify.py``.

Per PK we keep only the newest on-prem event (:class:`Tracked`), the newest
cloud observation (:class:`CloudSeen`) and a bounded list of fingerprints of
recent events for replay detection — never a history.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from dqhash.core.contracts import Action, CloudHash, OnPremEvent
from dqhash.core.hashing import differing_columns
from dqhash.core.statuses import Status as Status  # re-exported: the rules speak of it
from dqhash.core.statuses import having
from dqhash.core.tuples import build
from dqhash.core.windows import WindowSpec

#: Fingerprints remembered per PK (two per event: its id and its content).
RECENT_FINGERPRINTS = 16


PENDING = "PENDING"
#: the deadline of a snapshot row: none, it waits for its snapshot to be complete on both sides
#: (``on_snapshot_complete``), never for a timer
AWAITING_SNAPSHOT = 1 << 62
#: the action a tracked row read by the source's own snapshot keeps (``OnPremEvent.snapshot_read``): its event_ts is
#: when it was read, after the snapshot's consistent point, so an event that follows it is newer whatever its time
SNAPSHOT_READ = "READ"
#: event ids of DELETEs made from Topic-1 tombstones (``contracts.tombstone_event``)
TOMBSTONE_PREFIX = "tombstone:"


class Tracked(NamedTuple):
    """The newest on-prem event of a PK and where its classification stands."""

    event_id: str
    event_ts: int
    action: str
    hash_version: str | None
    hash_digest: str | None
    arrived_ms: int
    deadline_ms: int
    status: str  # PENDING or a Status value
    by_deadline: bool  # the current status was decided at the deadline; a late hash may revise it
    rechecks: int = 0  # re-reads of the cloud row requested before a final MISMATCH / MISSING_CLOUD
    recheck_results: tuple[str, ...] = ()  # what the cloud showed before each re-read
    awaiting_ms: int | None = None  # a requested read not yet answered (answer: any read at or after this time)
    snapshot_id: str | None = None  # a snapshot row: the run it belongs to
    reverify: bool = False  # a settled MATCH being read again (re-verification), not a new event
    column_digests: dict[str, str] | None = None  # the event's per-column digests, if its producer sent them
    #: the cloud_ts of the observation the current problem verdict rests on: a newer on-prem event committed by
    #: then may be what the cloud showed, and withdraws the verdict (``on_onprem``)
    basis_ms: int | None = None
    basis_late: bool = False  # that verdict was a late revision (counted as LATE_<status>)
    #: a late revision (row 12) waiting for the on-prem stream to be read this far (``revision_due``)
    revision_due_ms: int | None = None


class CloudSeen(NamedTuple):
    """The newest cloud observation of a PK (``hash_digest`` None: row not found)."""

    hash_version: str | None
    hash_digest: str | None
    cloud_ts: int
    arrived_ms: int
    columns_removed: tuple[str, ...] = ()
    snapshot_id: str | None = None  # read by a snapshot scan
    column_digests: dict[str, str] | None = None  # per-column digests, if the cloud side sent them


class Membership(NamedTuple):
    """Where a PK stands in its newest snapshot: which sides have shown it, and whether it was judged."""

    snapshot_id: str
    onprem: bool
    cloud: bool
    token_range: int | None
    judged: bool  # its snapshot verdict is given (or left to a newer stream event): a re-sweep skips it


class PairState(NamedTuple):
    tracked: Tracked | None
    cloud: CloudSeen | None
    recent: tuple[str, ...]
    updated_ms: int
    #: source offsets (on-prem, cloud, re-key topic) of the newest record applied to this pk: a record
    #: redelivered after a crash (at or below its offset) is recognised and not applied or counted again
    applied: tuple[int, int, int] = (-1, -1, -1)
    #: the pk's newest verdicts, newest last: [status, late, event_id, classified_ms, reason] (for inspection)
    history: tuple[tuple[Any, ...], ...] = ()
    #: origins ("side:partition:offset" in its input topic) of the newest records that reached this pk
    #: through the re-key topic: a redelivered input record is forwarded again at a new re-key offset
    origins: tuple[str, ...] = ()
    #: the pk's verdicts of the last few seconds, stored with the state that follows from them: if this
    #: state survived a crash, so did they, and a new owner re-publishes them (their audit records may not
    #: have reached Kafka before the crash; audit ids are deterministic, so a repeat is an upsert)
    outbox: tuple[Verdict, ...] = ()
    #: the pk's part in its newest snapshot run, if any (docs/snapshots.md)
    snapshot: Membership | None = None


class Verdict(NamedTuple):
    """One classification of one on-prem event: the source of an audit record."""

    status: Status
    reason: str
    late: bool
    event_id: str
    event_ts: int
    action: str
    hash_onprem: str | None  # "version:digest"
    hash_cloud: str | None
    cloud_ts: int | None
    window_start: int
    window_end: int
    arrived_ms: int
    classified_ms: int
    rechecks: int = 0
    recheck_results: tuple[str, ...] = ()
    snapshot_id: str | None = None  # a verdict of a snapshot run
    #: the columns whose digests differ (both sides sent digests and the hashes differ), else empty
    differing_columns: tuple[str, ...] = ()
    #: a withdrawal (SUPERSEDED, late): how the withdrawn verdict was counted (``MISMATCH``, ``LATE_MISMATCH``...)
    withdraws: str | None = None


class Lookup(NamedTuple):
    """A request to read the PK's row from the cloud store, not before ``not_before_ms``."""

    not_before_ms: int
    attempt: int  # 0: the event's first read; n: the n-th recheck


class Step(NamedTuple):
    state: PairState | None
    verdicts: tuple[Verdict, ...] = ()
    duplicate: bool = False  # a replayed event or cloud record: counted, not classified
    stale_cloud: bool = False  # a cloud observation older than the one held: ignored
    lookups: tuple[Lookup, ...] = ()  # cloud reads to request (only when Rules.lookups)
    reverified: bool = False  # a re-verification read found the row as it was


class Rules(NamedTuple):
    windows: WindowSpec = WindowSpec()
    #: settled state (nothing pending) is dropped this long after its last change
    retention_ms: int = 24 * 3600 * 1000
    #: dqhash's own cloud producer answers lookups: request a read per event and rechecks
    lookups: bool = False
    #: wait this long after an on-prem event before reading the cloud row (replication lag)
    lookup_delay_ms: int = 0
    #: re-reads before a MISMATCH / MISSING_CLOUD is final (needs lookups)
    rechecks: int = 0
    #: the n-th recheck is requested n × this after the suspicious observation
    recheck_backoff_ms: int = 2_000
    #: a deadline waits at most this long past itself for an unanswered lookup (a stalled producer)
    answer_wait_ms: int = 60_000
    #: check that an on-prem DELETE reached the cloud (DELETE_CONFIRMED / DELETE_NOT_PROPAGATED), rather than
    #: SKIPPED_DELETE: by a lookup, or by a Topic-2 "not found" after the delete
    verify_deletes: bool = False


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
        member = _joined(member, event.snapshot_id, onprem=True, token_range=event.snapshot_range)
    incoming = _track(event, now_ms, rules.windows)
    if current is not None and event.event_ts < current.event_ts and current.action != SNAPSHOT_READ:
        reason = f"out of order: older than the newest event {current.event_id} of this pk, not compared with newer cloud state"
        verdict = _verdict(incoming, Status.SUPERSEDED, reason, cloud, now_ms, rules.windows)
        return Step(PairState(current, cloud, recent, now_ms, snapshot=_judgement(member, current)), (verdict,))
    verdicts = _replaced(current, event, cloud, now_ms, rules.windows)
    incoming, decided, lookups = _first_look(incoming, event, cloud, now_ms, rules)
    if decided is not None:
        verdicts.append(decided)
    member = _judgement(member, incoming)
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
        return [_verdict(current, Status.SUPERSEDED, reason, cloud, now_ms, windows)]
    if current.basis_ms is not None and event.event_ts <= current.basis_ms:
        return [_withdrawal(current, event, cloud, now_ms, windows)]
    return []


def _first_look(
    incoming: Tracked, event: OnPremEvent, cloud: CloudSeen | None, now_ms: int, rules: Rules
) -> tuple[Tracked, Verdict | None, tuple[Lookup, ...]]:
    """The new event against the cloud state held: a skipped delete (row 6), a verdict now, or a wait, with the
    lookup that reads its row (row 17)."""
    if event.action is Action.DELETE and not rules.verify_deletes:
        verdict = _verdict(incoming, Status.SKIPPED_DELETE, "delete: no hash comparison", cloud, now_ms, rules.windows)
        return incoming._replace(status=Status.SKIPPED_DELETE.value), verdict, ()
    if event.unverifiable is not None:  # row 36: nothing to compare, and nothing a cloud read could decide
        reason = f"not compared: {event.unverifiable}"
        verdict = _verdict(incoming, Status.UNVERIFIABLE, reason, cloud, now_ms, rules.windows)
        return incoming._replace(status=Status.UNVERIFIABLE.value), verdict, ()
    incoming, decided, lookups = _evaluate(incoming, cloud, now_ms, rules, at_deadline=False)
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
        member = _joined(member, cloud.snapshot_id, onprem=False, token_range=cloud.snapshot_range)
    if state is None:
        return _step(build(PairState, (None, seen, (), now_ms, _NOT_APPLIED, (), (), (), member)))
    member = _judgement(member, state.tracked)
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
        member = _judgement(member, tracked)
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
        judged, verdict, lookups = _evaluate(tracked, seen, now_ms, rules, at_deadline=tracked.rechecks > 0)
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
    tracked, verdict, lookups = _evaluate(tracked, state.cloud, now_ms, rules, at_deadline=True, read_to=read_to)
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
    if (
        tracked is not None
        and tracked.snapshot_id == member.snapshot_id
        and tracked.status == PENDING
        and not tracked.reverify  # a snapshot row that matched, being read again: judged already
    ):
        tracked, verdict, lookups = _evaluate(
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
    verdict = _verdict(extra, Status.EXTRA_IN_CLOUD, reason, cloud, now_ms, rules.windows)
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
            recheck_results=tracked.recheck_results + (_describe(seen),),
            deadline_ms=not_before + rules.windows.grace_ms,
            awaiting_ms=not_before,
        )
        return rechecking, None, (Lookup(not_before, attempt),), False
    ready = _unread_until(status, seen, rules, read_to)
    if ready is not None:
        return tracked._replace(deadline_ms=_after(ready, now_ms)), None, (), False
    decided = tracked._replace(
        status=status._value_, by_deadline=False, reverify=False, basis_ms=seen.cloud_ts, basis_late=False
    )
    verdict = _verdict(tracked, status, reason, seen, now_ms, rules.windows)
    return decided, verdict, (), False


def _settled_match(tracked: Tracked) -> Tracked:
    return tracked._replace(
        status=Status.MATCH._value_, rechecks=0, recheck_results=(), awaiting_ms=None, reverify=False
    )


def _judgement(member: Membership | None, tracked: Tracked | None) -> Membership | None:
    """The member judged as soon as its completed snapshot could add nothing (``on_snapshot_complete``'s
    "nothing" outcome): its on-prem row is in and no row of this run is pending. The sweep then skips the pair
    instead of writing it again only to mark it; an on-prem row of the run pending again (sent again) unmarks it.
    """
    if member is None or not member.onprem:
        return member
    judged = not (
        tracked is not None
        and tracked.snapshot_id == member.snapshot_id
        and tracked.status == PENDING
        and not tracked.reverify
    )
    return member if member.judged is judged else member._replace(judged=judged)


def _joined(member: Membership | None, snapshot_id: str, onprem: bool, token_range: int | None) -> Membership:
    """The pk's membership once one side of ``snapshot_id`` has shown it (a newer run starts afresh)."""
    if member is None or member.snapshot_id != snapshot_id:
        member = Membership(snapshot_id, False, False, None, False)
    if token_range is None:
        token_range = member.token_range
    if onprem:
        return member._replace(onprem=True, token_range=token_range)
    return member._replace(cloud=True, token_range=token_range)


def pending_deadline(state: PairState | None) -> int | None:
    """The deadline still to be swept for this PK, if any (a snapshot row waits for its snapshot instead); for a
    settled event, when its late revision may be given."""
    if state is None or state.tracked is None:
        return None
    if state.tracked.status != PENDING:
        return state.tracked.revision_due_ms
    due = state.tracked.deadline_ms
    return None if due >= AWAITING_SNAPSHOT else due


def expires_at(state: PairState, rules: Rules) -> int | None:
    """When the PK's state may be dropped; None while an event or a late revision is pending, or its snapshot
    is unjudged."""
    if state.tracked is not None and (state.tracked.status == PENDING or state.tracked.revision_due_ms is not None):
        return None
    if state.snapshot is not None and not state.snapshot.judged:
        return None
    return state.updated_ms + rules.retention_ms


def _evaluate(
    tracked: Tracked, cloud: CloudSeen | None, now_ms: int, rules: Rules, at_deadline: bool, read_to: int | None = None
) -> tuple[Tracked, Verdict | None, tuple[Lookup, ...]]:
    """The verdict the event can have now, rechecks first; a problem verdict waits for Topic-1 (``read_to``)."""
    status, reason = _compare(tracked, cloud, at_deadline)
    if status is None:
        return tracked, None, ()
    if cloud is not None and cloud.columns_removed and status is not Status.MATCH:
        reason += f" (column_removed: the cloud table lacks hashed column(s) {', '.join(cloud.columns_removed)})"
    if status in _RECHECKED and rules.lookups and tracked.rechecks < rules.rechecks:
        # Replication lag, not divergence? Read the row again before saying so.
        attempt = tracked.rechecks + 1
        not_before = now_ms + attempt * rules.recheck_backoff_ms
        rechecking = tracked._replace(
            rechecks=attempt,
            recheck_results=tracked.recheck_results + (_describe(cloud),),
            deadline_ms=max(tracked.deadline_ms, not_before + rules.windows.grace_ms),
            awaiting_ms=not_before,
        )
        return rechecking, None, (Lookup(not_before, attempt),)
    ready = _unread_until(status, cloud, rules, read_to)
    if ready is not None:  # a snapshot row keeps waiting for its run, which judges it when complete
        waiting = tracked.deadline_ms if tracked.deadline_ms >= AWAITING_SNAPSHOT else _after(ready, now_ms)
        return tracked._replace(deadline_ms=waiting), None, ()
    decided = _decided(tracked, status._value_, at_deadline and status is not Status.MATCH)
    if status in _RESTS_ON_CLOUD and cloud is not None:
        decided = decided._replace(basis_ms=cloud.cloud_ts, basis_late=False, revision_due_ms=None)
    elif tracked.basis_ms is not None or tracked.revision_due_ms is not None:
        decided = decided._replace(basis_ms=None, basis_late=False, revision_due_ms=None)
    return decided, _verdict(tracked, status, reason, cloud, now_ms, rules.windows), ()


#: problem verdicts that rest on a cloud observation: a newer on-prem version not read yet may be what the cloud
#: shows (a different hash, no row, a row still there), so they wait for Topic-1 (docs/classification.md)
_RESTS_ON_CLOUD = frozenset(having(rests_on_cloud=True))


def _unread_until(status: Status, cloud: CloudSeen | None, rules: Rules, read_to: int | None) -> int | None:
    """When a problem verdict resting on ``cloud`` may be given, or None if it may be given now.

    The cloud observation reflects some on-prem version committed by ``cloud_ts``; its Topic-1 event reaches the
    topic within the grace. Until every on-prem input of the pk is read that far (``read_to``, the sweep's
    horizon; None: not known, as for a record just arrived), a version not yet read may explain the difference.
    """
    if status not in _RESTS_ON_CLOUD or cloud is None:
        return None
    ready = cloud.cloud_ts + rules.windows.grace_ms
    return None if read_to is not None and read_to >= ready else ready


def _after(ready: int, now_ms: int) -> int:
    """A deferred verdict's due time: ``ready``, and never at or before the moment it is deferred. A sweep that
    ran before this record was applied (a tick, read again after a failover) must not be able to reach it: its
    verdict is then given, and counted, by a sweep that comes after (``core.ticks``)."""
    return max(ready, now_ms + 1)


def _may_revise(tracked: Tracked, seen: CloudSeen) -> bool:
    """Row 12 revises a deadline verdict by a cloud observation that found the row (of a DELETE, any): a row not
    found adds nothing to what the deadline already said."""
    return seen.hash_digest is not None or tracked.action == "DELETE"


def _revise_late(
    tracked: Tracked, seen: CloudSeen, now_ms: int, rules: Rules, read_to: int | None
) -> tuple[Tracked, Verdict | None]:
    """Row 12: a verdict decided at the deadline, and a newer cloud observation. A revision that is good news
    is given now; a problem revision waits for Topic-1 like any problem verdict (``revision_due_ms``)."""
    status, _ = _compare(tracked, seen, at_deadline=True)
    if status is None or status._value_ == tracked.status:
        return tracked._replace(revision_due_ms=None) if tracked.revision_due_ms is not None else tracked, None
    ready = _unread_until(status, seen, rules, read_to)
    if ready is not None:
        return tracked._replace(revision_due_ms=_after(ready, now_ms)), None
    revised, verdict, _ = _evaluate(tracked, seen, now_ms, rules._replace(rechecks=0), True, read_to)
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
    verdict = _verdict(current, Status.SUPERSEDED, reason, cloud, now_ms, windows)
    counted = f"LATE_{current.status}" if current.basis_late else current.status
    return verdict._replace(late=True, withdraws=counted)


_RECHECKED = frozenset(having(rechecked=True))
_NOT_APPLIED = PairState._field_defaults["applied"]


def _step(state: PairState | None, verdicts: tuple[Verdict, ...] = (), lookups: tuple[Lookup, ...] = ()) -> Step:
    """``Step(state, verdicts, lookups=lookups)``: an input record's usual outcome, neither duplicate nor stale."""
    return build(Step, (state, verdicts, False, False, lookups, False))


#: where ``status`` (then ``by_deadline``) sits in a Tracked tuple, and so in its stored JSON array
TRACKED_STATUS = Tracked._fields.index("status")
assert Tracked._fields[TRACKED_STATUS + 1] == "by_deadline"


def _decided(tracked: Tracked, status: str, by_deadline: bool) -> Tracked:
    """``tracked._replace(status=..., by_deadline=...)``, positionally: it runs for every classification."""
    return build(Tracked, (*tracked[:TRACKED_STATUS], status, by_deadline, *tracked[TRACKED_STATUS + 2 :]))


def _describe(cloud: CloudSeen | None) -> str:
    """What one read showed, for the audit record: ``v2:1a2b3c4d5e6f@<cloud_ts>``, ``not_found@...``, ``none``."""
    if cloud is None:
        return "none"
    seen = f"{cloud.hash_version}:{cloud.hash_digest[:12]}" if cloud.hash_digest else "not_found"
    return f"{seen}@{cloud.cloud_ts}"


def _compare(tracked: Tracked, cloud: CloudSeen | None, at_deadline: bool) -> tuple[Status | None, str]:
    if tracked.action == "DELETE":
        return _compare_delete(tracked, cloud, at_deadline)
    if (
        tracked.snapshot_id is not None
        and cloud is not None
        and cloud.snapshot_id != tracked.snapshot_id
        and cloud.cloud_ts < tracked.event_ts
    ):
        cloud = None  # a snapshot row is judged by its own scan or a later read, never by what the cloud held before
    if cloud is None or cloud.hash_digest is None:
        if not at_deadline:
            return None, ""
        return Status.MISSING_CLOUD, "no cloud hash by the deadline" if cloud is None else "row not found in the cloud"
    if cloud.hash_version != tracked.hash_version:
        return (
            Status.HASH_VERSION_MISMATCH,
            f"on-prem hash is {tracked.hash_version}, cloud hash is {cloud.hash_version}",
        )
    if cloud.hash_digest == tracked.hash_digest:
        return Status.MATCH, "hashes equal"
    if cloud.cloud_ts < tracked.event_ts:
        if not at_deadline:
            return None, ""
        return Status.MISMATCH, "cloud never caught up: newest cloud hash is older than the event and differs"
    return Status.MISMATCH, "hashes differ"


def _compare_delete(tracked: Tracked, cloud: CloudSeen | None, at_deadline: bool) -> tuple[Status | None, str]:
    """A DELETE is confirmed by the cloud not finding the row; a row still found waits, as replication lags."""
    if cloud is not None and cloud.cloud_ts >= tracked.event_ts:
        if cloud.hash_digest is None:
            return Status.DELETE_CONFIRMED, "row not found in the cloud after the delete"
        if at_deadline:
            return Status.DELETE_NOT_PROPAGATED, "the row is still in the cloud after the delete"
        return None, ""
    if not at_deadline:
        return None, ""
    if cloud is None:
        return Status.DELETE_NOT_PROPAGATED, "no cloud observation after the delete by the deadline"
    if cloud.hash_digest is None:
        return Status.DELETE_CONFIRMED, "the cloud had no row (its newest observation predates the delete)"
    return Status.DELETE_NOT_PROPAGATED, "the newest cloud observation predates the delete and still shows the row"


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


def _verdict(
    tracked: Tracked, status: Status, reason: str, cloud: CloudSeen | None, now_ms: int, windows: WindowSpec
) -> Verdict:
    start = windows.start(tracked.event_ts)
    columns: tuple[str, ...] = ()
    if status in _DIFFERING:
        columns = _differing(tracked, cloud)
        if not columns:
            reason = f"{reason}; columns not named: {_unnamed_because(tracked, cloud)}"
    return build(
        Verdict,
        (
            status,
            reason,
            False,
            tracked.event_id,
            tracked.event_ts,
            tracked.action,
            f"{tracked.hash_version}:{tracked.hash_digest}" if tracked.hash_digest else None,
            f"{cloud.hash_version}:{cloud.hash_digest}" if cloud and cloud.hash_digest else None,
            cloud.cloud_ts if cloud else None,
            start,
            start + windows.size_ms,
            tracked.arrived_ms,
            now_ms,
            tracked.rechecks,
            tracked.recheck_results + ((_describe(cloud),) if tracked.rechecks else ()),
            tracked.snapshot_id,
            columns,
            None,
        ),
    )


#: verdicts whose two hashes differ: the ones a per-column comparison explains
_DIFFERING = frozenset(having(differing=True))


def _unnamed_because(tracked: Tracked, cloud: CloudSeen | None) -> str:
    """Why a verdict whose hashes differ names no column: what an operator would change to have them named."""
    if not tracked.column_digests:
        return "the on-prem side sent no per-column digests (column_digests)"
    if cloud is None or not cloud.column_digests:
        return "the cloud side sent no per-column digests (DQHASH_COLUMN_DIGESTS on the cloud hash producer)"
    return "every digested column is equal on both sides (the difference is in a column that is not digested)"


def _differing(tracked: Tracked, cloud: CloudSeen | None) -> tuple[str, ...]:
    """``hashing.differing_columns`` of the two sides: () unless both sent digests."""
    return tuple(differing_columns(tracked.column_digests, cloud.column_digests if cloud is not None else None))
