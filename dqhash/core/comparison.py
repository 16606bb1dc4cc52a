"""An on-prem event against a cloud observation: the status it earns now, and when a problem verdict may be
given.

A MATCH is given at once. A problem verdict is rechecked first (with lookups), and one that rests on a cloud
observation waits until the on-prem stream is read past that observation plus the grace: a newer on-prem
version not yet read may be what the cloud shows (docs/classification.md, "No verdict ahead of Topic-1").
"""

from __future__ import annotations

from dqhash.core.pair_state import AWAITING_SNAPSHOT, TRACKED_STATUS, CloudSeen, Lookup, Rules, Tracked, Verdict
from dqhash.core.statuses import Status, having
from dqhash.core.tuples import build
from dqhash.core.verdicts import describe, make_verdict


def evaluate(
    tracked: Tracked, cloud: CloudSeen | None, now_ms: int, rules: Rules, at_deadline: bool, read_to: int | None = None
) -> tuple[Tracked, Verdict | None, tuple[Lookup, ...]]:
    """The verdict the event can have now, rechecks first; a problem verdict waits for Topic-1 (``read_to``)."""
    status, reason = compare(tracked, cloud, at_deadline)
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
            recheck_results=tracked.recheck_results + (describe(cloud),),
            deadline_ms=max(tracked.deadline_ms, not_before + rules.windows.grace_ms),
            awaiting_ms=not_before,
        )
        return rechecking, None, (Lookup(not_before, attempt),)
    ready = unread_until(status, cloud, rules, read_to)
    if ready is not None:  # a snapshot row keeps waiting for its run, which judges it when complete
        waiting = tracked.deadline_ms if tracked.deadline_ms >= AWAITING_SNAPSHOT else due_after(ready, now_ms)
        return tracked._replace(deadline_ms=waiting), None, ()
    decided = _decided(tracked, status._value_, at_deadline and status is not Status.MATCH)
    if status in _RESTS_ON_CLOUD and cloud is not None:
        decided = decided._replace(basis_ms=cloud.cloud_ts, basis_late=False, revision_due_ms=None)
    elif tracked.basis_ms is not None or tracked.revision_due_ms is not None:
        decided = decided._replace(basis_ms=None, basis_late=False, revision_due_ms=None)
    return decided, make_verdict(tracked, status, reason, cloud, now_ms, rules.windows), ()


#: problem verdicts that rest on a cloud observation: a newer on-prem version not read yet may be what the cloud
#: shows (a different hash, no row, a row still there), so they wait for Topic-1 (docs/classification.md)
_RESTS_ON_CLOUD = frozenset(having(rests_on_cloud=True))


def unread_until(status: Status, cloud: CloudSeen | None, rules: Rules, read_to: int | None) -> int | None:
    """When a problem verdict resting on ``cloud`` may be given, or None if it may be given now.

    The cloud observation reflects some on-prem version committed by ``cloud_ts``; its Topic-1 event reaches the
    topic within the grace. Until every on-prem input of the pk is read that far (``read_to``, the sweep's
    horizon; None: not known, as for a record just arrived), a version not yet read may explain the difference.
    """
    if status not in _RESTS_ON_CLOUD or cloud is None:
        return None
    ready = cloud.cloud_ts + rules.windows.grace_ms
    return None if read_to is not None and read_to >= ready else ready


def due_after(ready: int, now_ms: int) -> int:
    """A deferred verdict's due time: ``ready``, and never at or before the moment it is deferred. A sweep that
    ran before this record was applied (a tick, read again after a failover) must not be able to reach it: its
    verdict is then given, and counted, by a sweep that comes after (``core.ticks``)."""
    return max(ready, now_ms + 1)


_RECHECKED = frozenset(having(rechecked=True))


def _decided(tracked: Tracked, status: str, by_deadline: bool) -> Tracked:
    """``tracked._replace(status=..., by_deadline=...)``, positionally: it runs for every classification."""
    return build(Tracked, (*tracked[:TRACKED_STATUS], status, by_deadline, *tracked[TRACKED_STATUS + 2 :]))


def compare(tracked: Tracked, cloud: CloudSeen | None, at_deadline: bool) -> tuple[Status | None, str]:
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
