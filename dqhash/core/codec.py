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
    fmt, tracked, cloud, recent, updated_ms, *later = orjson.loads(data)
    if fmt != FORMAT:
        raise ValueError(f"unknown pair-state format {fmt}; this worker reads format {FORMAT}")
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
#: where the membership sits in the stored array past ``updated_ms`` (it is written last, and only when present)
_SNAPSHOT = PairState._fields.index("snapshot") - PairState._fields.index("updated_ms") - 1
_MEMBER_JUDGED = Membership._fields.index("judged")
#: a dict, not ``Status(value)``: the enum's call costs more than the rest of a verdict's decoding
_STATUSES = {status.value: status for status in Status}


def settled_since(data: bytes) -> int | None:
    """``updated_ms`` of a stored state with no event pending, None while one is: what the expiry scan needs
    (``pair_state.expires_at``) without building the state, for up to 1,000 keys per partition and tick."""
    fmt, tracked, _cloud, _recent, updated_ms, *later = orjson.loads(data)
    if fmt != FORMAT:
        raise ValueError(f"unknown pair-state format {fmt}; this worker reads format {FORMAT}")
    if tracked is not None and (
        tracked[TRACKED_STATUS] == PENDING
        or (len(tracked) > _TRACKED_REVISION and tracked[_TRACKED_REVISION] is not None)
    ):
        return None  # an event pending, or a late revision (``pair_state.expires_at``)
    if len(later) > _SNAPSHOT and not later[_SNAPSHOT][_MEMBER_JUDGED]:
        return None  # a snapshot row its run has yet to judge (a cloud-only row waiting for its run to complete)
    since: int | None = updated_ms
    return since


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
