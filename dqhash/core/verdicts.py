"""The verdict a rule gives an event: what its audit record says, with the columns that differ named."""

from __future__ import annotations

from dqhash.core.hashing import differing_columns
from dqhash.core.pair_state import CloudSeen, Tracked, Verdict
from dqhash.core.statuses import Status, having
from dqhash.core.tuples import build
from dqhash.core.windows import WindowSpec


def make_verdict(
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
            tracked.recheck_results + ((describe(cloud),) if tracked.rechecks else ()),
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


def describe(cloud: CloudSeen | None) -> str:
    """What one read showed, for the audit record: ``v2:1a2b3c4d5e6f@<cloud_ts>``, ``not_found@...``, ``none``."""
    if cloud is None:
        return "none"
    seen = f"{cloud.hash_version}:{cloud.hash_digest[:12]}" if cloud.hash_digest else "not_found"
    return f"{seen}@{cloud.cloud_ts}"
