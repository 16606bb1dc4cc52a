"""What dqhash keeps per PK and what it says of it: the shapes the classification rules read and write.

The rules (``dqhash.core.classify``) turn a :class:`PairState` and one incoming fact into a :class:`Step`: the
new state, its verdicts and the cloud reads it asks for. The state is stored per PK (``dqhash.core.codec``), so
its fields are added only at the end, with a default. Per PK only the newest on-prem event (:class:`Tracked`), the
newest cloud observation (:class:`CloudSeen`) and a bounded list of fingerprints of recent events are kept, never
a history.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from dqhash.core.statuses import Status
from dqhash.core.windows import WindowSpec

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


#: where ``status`` (then ``by_deadline``) sits in a Tracked tuple, and so in its stored JSON array
TRACKED_STATUS = Tracked._fields.index("status")
assert Tracked._fields[TRACKED_STATUS + 1] == "by_deadline"


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
