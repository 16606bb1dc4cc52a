"""Every verdict status, declared once with what it means to each consumer; every list of statuses derives here.

A status's properties used to be spelled out in the outputs, the window tally, the snapshot and period reports,
the web views, DogStatsD, the worker's output filter and the dashboard, each by hand. Now each is a question
asked of :data:`KINDS`, so a new status is one row here (and its rules in ``classify``).
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple


class Status(str, Enum):
    MATCH = "MATCH"
    MISMATCH = "MISMATCH"
    MISSING_CLOUD = "MISSING_CLOUD"
    SKIPPED_DELETE = "SKIPPED_DELETE"
    HASH_VERSION_MISMATCH = "HASH_VERSION_MISMATCH"
    SUPERSEDED = "SUPERSEDED"
    #: a snapshot found the row in the cloud and not on-prem (docs/snapshots.md)
    EXTRA_IN_CLOUD = "EXTRA_IN_CLOUD"
    #: a re-verification found a row that matched no longer does; then one that has vanished from the cloud
    CLOUD_DRIFT = "CLOUD_DRIFT"
    CLOUD_VANISHED = "CLOUD_VANISHED"
    #: an on-prem DELETE checked against the cloud (DQHASH_VERIFY_DELETES): gone there too, or still there
    DELETE_CONFIRMED = "DELETE_CONFIRMED"
    DELETE_NOT_PROPAGATED = "DELETE_NOT_PROPAGATED"
    #: a change its producer could not hash exactly (a value the source did not send, a decimal sent as a double):
    #: never compared, never a MISMATCH (docs/debezium.md)
    UNVERIFIABLE = "UNVERIFIABLE"


class Kind(NamedTuple):
    """What a status means to each consumer of verdicts."""

    #: the DogStatsD counter of its verdicts
    counter: str
    #: what a resync job does about it (``repair_request``): resync the row, delete it; None: not a problem
    repair: str | None = None
    #: counts in the match rate's denominator: the pair was compared
    compared: bool = False
    #: the ``dqhash report`` gate that bounds its share: "mismatch" or "missing"
    gate: str | None = None
    #: a snapshot run's token range with one has differences (``--ranges-from`` reruns it)
    difference: bool = False
    #: a first verdict an on-prem snapshot row can get (a partition is judged once every row has one)
    onprem_verdict: bool = False
    #: a verdict on an on-prem DELETE (also counted in ``dq_delete_count``)
    delete: bool = False
    #: re-read (DQHASH_RECHECKS) before it is final
    rechecked: bool = False
    #: rests on a cloud observation a newer on-prem version may explain: waits for Topic-1, can be withdrawn
    rests_on_cloud: bool = False
    #: the two hashes differ: per-column digests can name the columns
    differing: bool = False
    #: its rows in docs/classification.md
    rows: str = ""


KINDS: dict[Status, Kind] = {
    Status.MATCH: Kind("dq_hash_match", compared=True, onprem_verdict=True, rows="1, 12, 18"),
    Status.MISMATCH: Kind(
        "dq_hash_mismatch",
        repair="resync",
        compared=True,
        gate="mismatch",
        difference=True,
        onprem_verdict=True,
        rechecked=True,
        rests_on_cloud=True,
        differing=True,
        rows="2, 3, 12, 19",
    ),
    Status.MISSING_CLOUD: Kind(
        "dq_missing_cloud",
        repair="resync",
        compared=True,
        gate="missing",
        difference=True,
        onprem_verdict=True,
        rechecked=True,
        rests_on_cloud=True,
        rows="4, 5, 20, 25",
    ),
    Status.SKIPPED_DELETE: Kind("dq_delete_count", delete=True, rows="6"),
    Status.HASH_VERSION_MISMATCH: Kind(
        "dq_hash_version_mismatch", compared=True, difference=True, onprem_verdict=True, rows="10"
    ),
    Status.SUPERSEDED: Kind("dq_superseded", onprem_verdict=True, rows="8, 9, 28, 35"),
    Status.EXTRA_IN_CLOUD: Kind(
        "dq_extra_in_cloud", repair="delete", compared=True, difference=True, rests_on_cloud=True, rows="26"
    ),
    Status.CLOUD_DRIFT: Kind(
        "dq_cloud_drift",
        repair="resync",
        compared=True,
        gate="mismatch",
        rests_on_cloud=True,
        differing=True,
        rows="33",
    ),
    Status.CLOUD_VANISHED: Kind(
        "dq_cloud_vanished", repair="resync", compared=True, gate="missing", rests_on_cloud=True, rows="33"
    ),
    Status.DELETE_CONFIRMED: Kind("dq_delete_confirmed", delete=True, rows="29"),
    Status.DELETE_NOT_PROPAGATED: Kind(
        "dq_delete_not_propagated", repair="delete", delete=True, rechecked=True, rests_on_cloud=True, rows="30"
    ),
    Status.UNVERIFIABLE: Kind("dq_unverifiable", onprem_verdict=True, rows="36"),
}


def having(**properties: object) -> tuple[Status, ...]:
    """The statuses whose kind has every property given, in declaration order: ``having(compared=True)``."""
    return tuple(s for s, kind in KINDS.items() if all(getattr(kind, k) == v for k, v in properties.items()))


#: confirmed problems: the repair topic, and so /dq/mismatches (which follows it)
PROBLEMS: tuple[Status, ...] = tuple(s for s, kind in KINDS.items() if kind.repair is not None)
#: status value → what a resync job does
REPAIR_ACTIONS: dict[str, str] = {s.value: kind.repair for s, kind in KINDS.items() if kind.repair is not None}
COMPARED: tuple[str, ...] = tuple(s.value for s in having(compared=True))
GATED: dict[str, tuple[str, ...]] = {
    gate: tuple(s.value for s in having(gate=gate)) for gate in ("mismatch", "missing")
}
DIFFERENCES: tuple[str, ...] = tuple(s.value for s in having(difference=True))
ON_PREM_VERDICTS: tuple[str, ...] = tuple(s.value for s in having(onprem_verdict=True))
DELETES: frozenset[str] = frozenset(s.value for s in having(delete=True))
COUNTERS: dict[str, str] = {s.value: kind.counter for s, kind in KINDS.items()}

assert set(KINDS) == set(Status), "every status is declared in KINDS"
