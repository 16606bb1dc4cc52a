"""Compact bytes for the per-PK state held in RocksDB and its changelog.

A positional JSON array (orjson) rather than a keyed object: state is written
once per event, so its size is paid in changelog bytes, RocksDB bytes and
serialisation time on the hot path. Field order is the NamedTuple order; add
fields only at the end, with a default, so older records stay readable.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson

from dqhash.core.jsontext import dumps_kept
from dqhash.core.pair_state import PENDING, TRACKED_STATUS, CloudSeen, Membership, PairState, Tracked, Verdict
from dqhash.core.statuses import Status
from dqhash.core.tuples import build

T = TypeVar("T", bound=tuple[Any, ...])

FORMAT = 1


def encode_state(state: PairState) -> bytes:
    tracked, cloud, recent, updated_ms, applied, history, origins, outbox, snapshot = state
    fields = [
        FORMAT,
        tuple(tracked) if tracked else None,
        tuple(cloud) if cloud else None,
        recent,
        updated_ms,
        applied,
        history,
        origins,
        [tuple(v) for v in outbox],
    ]
    if snapshot is not None:
        fields.append(tuple(snapshot))
    return dumps_kept(fields)  # held in a batch, a sweep or a rebuild until written


def decode_state(data: bytes) -> PairState:
    return _state_of(_stored(data))


def decode_unless_settled(data: bytes, verdicts_since: int | None) -> PairState | None:
    """The stored state; None, without building it, when nothing is pending in it (as :func:`settled_since`) and
    its outbox holds no verdict given at or after ``verdicts_since`` (None: whatever its outbox holds).

    A takeover's rebuild needs a settled pair only for the verdicts of its last moments (``engine.takeover``).
    """
    fields = _stored(data)
    if _settled(fields) and (verdicts_since is None or _last_verdict(fields) < verdicts_since):
        return None
    return _state_of(fields)


def _state_of(fields: list[Any]) -> PairState:
    _, tracked, cloud, recent, updated_ms, *later = fields
    applied, history, origins, outbox, snapshot = (later + [None] * 5)[:5]  # absent in older records
    # built with ``dqhash.core.tuples.build``, past the NamedTuples' constructors: a pair's second side decodes
    # its first side's state, on the hot path (docs/performance.md, "Per-record constant costs")
    return build(
        PairState,
        (
            _tracked(tracked) if tracked else None,
            _cloud(cloud) if cloud else None,
            tuple(recent),
            updated_ms,
            tuple(applied) if applied else (-1, -1, -1),
            tuple(map(tuple, history)) if history else (),
            tuple(origins) if origins else (),
            tuple(map(_verdict, outbox)) if outbox else (),
            build(Membership, snapshot) if snapshot else None,
        ),
    )


# Tuples decoded from JSON arrays come back as lists; they are made tuples again in place. Records written
# before a field existed are shorter: they go through the NamedTuple's constructor, whose defaults fill in.
_VERDICT_STATUS, _VERDICT_RESULTS = Verdict._fields.index("status"), Verdict._fields.index("recheck_results")
_VERDICT_COLUMNS = Verdict._fields.index("differing_columns")
_TRACKED_RESULTS = Tracked._fields.index("recheck_results")
_TRACKED_REVISION = Tracked._fields.index("revision_due_ms")
_CLOUD_REMOVED = CloudSeen._fields.index("columns_removed")
_MEMBER_JUDGED = Membership._fields.index("judged")
#: where fields sit in the stored array: [FORMAT, *PairState], the membership written only when present
_UPDATED = 1 + PairState._fields.index("updated_ms")
_OUTBOX = 1 + PairState._fields.index("outbox")
_STORED_SNAPSHOT = 1 + PairState._fields.index("snapshot")
_VERDICT_CLASSIFIED = Verdict._fields.index("classified_ms")
#: a dict, not ``Status(value)``: the enum's call costs more than the rest of a verdict's decoding
_STATUSES = {status.value: status for status in Status}


def settled_since(data: bytes) -> int | None:
    """``updated_ms`` of a stored state with no event pending, None while one is: what the expiry scan needs
    (``pair_state.expires_at``) without building the state, for 1,000 keys a second per partition."""
    fields = _stored(data)
    return fields[_UPDATED] if _settled(fields) else None


def _last_verdict(fields: list[Any]) -> int:
    """When the newest verdict of a stored state's outbox was given; -1 for an empty outbox."""
    outbox = fields[_OUTBOX] if len(fields) > _OUTBOX else None
    return max(verdict[_VERDICT_CLASSIFIED] for verdict in outbox) if outbox else -1


def _stored(data: bytes) -> list[Any]:
    fields: list[Any] = orjson.loads(data)
    if fields[0] != FORMAT:
        raise ValueError(f"unknown pair-state format {fields[0]}; this worker reads format {FORMAT}")
    return fields


def _settled(fields: list[Any]) -> bool:
    """No event pending, no late revision due, and no snapshot membership left to judge (``pair_state.expires_at``)."""
    tracked = fields[1]
    if tracked is not None and (
        tracked[TRACKED_STATUS] == PENDING
        or (len(tracked) > _TRACKED_REVISION and tracked[_TRACKED_REVISION] is not None)
    ):
        return False  # an event pending, or a late revision
    # a snapshot row its run has yet to judge (a cloud-only row waiting for its run to complete)
    return not (len(fields) > _STORED_SNAPSHOT and not fields[_STORED_SNAPSHOT][_MEMBER_JUDGED])


#: how a stored state ends when its membership is judged: the membership is the array's last item when
#: present, and ``judged`` its last field (no other state ends so: an outbox verdict ends with a list)
_JUDGED_MEMBER_END = b",true]]"


def snapshot_judged(data: bytes) -> bool:
    """Whether a stored state's snapshot membership is judged, from its bytes: a judging sweep passes over
    every pair of a run, most of them judged when they paired, and needs none of them built."""
    return data.endswith(_JUDGED_MEMBER_END)


def _verdict(fields: list[Any]) -> Verdict:
    status = _STATUSES.get(fields[_VERDICT_STATUS])
    if status is None:
        raise ValueError(f"unknown verdict status {fields[_VERDICT_STATUS]!r} in a stored pair state")
    fields[_VERDICT_STATUS] = status
    if len(fields) > _VERDICT_COLUMNS:
        fields[_VERDICT_COLUMNS] = tuple(fields[_VERDICT_COLUMNS])
    return _typed(Verdict, fields, _VERDICT_RESULTS)


def _tracked(fields: list[Any]) -> Tracked:
    return _typed(Tracked, fields, _TRACKED_RESULTS)


def _cloud(fields: list[Any]) -> CloudSeen:
    return _typed(CloudSeen, fields, _CLOUD_REMOVED)


def _typed(cls: type[T], fields: list[Any], tuple_field: int) -> T:
    """The NamedTuple of a stored array, its tuple field made a tuple again; a shorter (older) array goes through
    the constructor, whose defaults fill in the fields it lacks."""
    if len(fields) > tuple_field:
        fields[tuple_field] = tuple(fields[tuple_field])
    return build(cls, fields) if len(fields) == len(cls._fields) else cls(*fields)  # type: ignore[attr-defined]
