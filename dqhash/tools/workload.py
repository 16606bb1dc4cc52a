"""A realistic mixed workload with known answers, for the demo, the benchmark and the tests.

Pure: it builds on-prem records, the rows of the "cloud copy" (for the
producer's SQLite store) and the counts a correct pipeline must report.
On-prem rows render values differently from the cloud rows (``12.50`` vs
``12.5``, ``+00:00`` vs ``Z``): canonical hashing must still call them equal.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dqhash.core.jsontext import dumps_kept

#: Share of on-prem records per scenario (sums to 1).
MIX: dict[str, float] = {
    "match": 0.70,
    "mismatch": 0.06,
    "missing_cloud": 0.04,  # the row never reaches the cloud
    "late_in_grace": 0.04,  # the row replicates late, inside the grace: a recheck finds it
    "late_after_grace": 0.03,  # the row shows up after MISSING_CLOUD was emitted
    "delete": 0.04,
    "duplicate": 0.04,  # an earlier match event replayed byte for byte
    "invalid_hash": 0.01,
    "missing_pk": 0.01,
    "unknown_action": 0.015,
    "broken_json": 0.015,
}

Record = tuple[bytes | None, bytes]  # (key, value)


#: The demo table: hashed columns, their declared types, and a column that is not hashed (schema drift).
HASH_COLUMNS = ("id", "name", "amount", "updated_at")
HASH_TYPES = {"amount": "decimal", "updated_at": "timestamp"}
TABLE_DDL = "CREATE TABLE rows (id TEXT PRIMARY KEY, name TEXT, amount TEXT, updated_at TEXT, notes TEXT)"

Row = dict


@dataclass
class Workload:
    onprem: list[Record] = field(default_factory=list)  # in send order; duplicates come after their originals
    rows_now: list[Row] = field(default_factory=list)  # the cloud copy as it is at the start
    rows_in_grace: list[Row] = field(default_factory=list)  # rows that replicate a little late
    rows_late: dict[str, Row] = field(default_factory=dict)  # pk → row that appears after its MISSING_CLOUD
    expected_audit: Counter = field(default_factory=Counter)  # (status, late) → n
    expected_dlq: Counter = field(default_factory=Counter)  # reason → n
    expected_duplicates: int = 0
    scenario_counts: Counter = field(default_factory=Counter)
    #: the on-prem table after the events (what a snapshot export holds), and the cloud rows of the
    #: snapshot scenarios (``add_snapshot_scenarios``)
    onprem_table: list[Row] = field(default_factory=list)
    cloud_only_rows: list[Row] = field(default_factory=list)
    drift_rows: list[Row] = field(default_factory=list)  # matched rows, then changed in the cloud only
    expected_snapshot: Counter = field(default_factory=Counter)  # status → n, within the snapshot run
    snapshot_report: dict = field(default_factory=dict)  # the run's report, once it is complete

    @property
    def cloud_rows(self) -> int:
        return len(self.rows_now) + len(self.rows_in_grace) + len(self.rows_late)


def _counts(n: int) -> Counter:
    counts = Counter({name: int(n * share) for name, share in MIX.items()})
    counts["match"] += n - sum(counts.values())
    if counts["duplicate"] > counts["match"]:
        counts["match"], counts["duplicate"] = counts["match"] + counts["duplicate"], 0
    return counts


def _scenario(
    w: Workload, scenario: str, i: int, pk: str, event: dict[str, Any], cloud_row: dict[str, Any], verify_deletes: bool
) -> dict[str, Any]:
    """What one scenario does to its event and the cloud copy, and the outcome it expects; returns the event."""
    if scenario == "match":
        w.rows_now.append(cloud_row)
        w.expected_audit["MATCH", False] += 1
    elif scenario == "mismatch":
        w.rows_now.append({**cloud_row, "name": f"customer {i} (drifted)"})
        w.expected_audit["MISMATCH", False] += 1
    elif scenario == "missing_cloud":
        w.expected_audit["MISSING_CLOUD", False] += 1
    elif scenario == "late_in_grace":
        w.rows_in_grace.append(cloud_row)
        w.expected_audit["MATCH", False] += 1
    elif scenario == "late_after_grace":
        w.rows_late[pk] = cloud_row
        w.expected_audit["MISSING_CLOUD", False] += 1
        w.expected_audit["MATCH", True] += 1
    elif scenario == "delete":
        return _delete(w, i, event, cloud_row, verify_deletes)
    elif scenario in _INVALID:
        field, value, reason = _INVALID[scenario]
        event = {**event, field: value} if field else event
        w.expected_dlq[reason] += 1
    return event


#: scenarios whose record is refused: (field, value it gets, the DLQ reason); broken JSON is cut short instead
_INVALID: dict[str, tuple[str | None, Any, str]] = {
    "invalid_hash": ("hash_onprem", "not-a-sha256", "INVALID_HASH_FORMAT"),
    "missing_pk": ("partitionColumns", [], "MISSING_PK"),
    "unknown_action": ("action", "MERGE", "UNKNOWN_ACTION"),
    "broken_json": (None, None, "INVALID_JSON"),
}


def _delete(
    w: Workload, i: int, event: dict[str, Any], cloud_row: dict[str, Any], verify_deletes: bool
) -> dict[str, Any]:
    """A DELETE: skipped, or checked, with every fourth one left in the cloud (an unpropagated delete)."""
    event = {**event, "action": "DELETE"}
    del event["hash_onprem"], event["column_digests"]
    if not verify_deletes:
        w.expected_audit["SKIPPED_DELETE", False] += 1
    elif i % 4 == 0:
        w.rows_now.append(cloud_row)  # the delete never reached the cloud
        w.expected_audit["DELETE_NOT_PROPAGATED", False] += 1
    else:
        w.expected_audit["DELETE_CONFIRMED", False] += 1
    return event


def build(n: int, now_ms: int, seed: int = 7, run_id: str = "demo", verify_deletes: bool = False) -> Workload:
    """``n`` on-prem records with every scenario, and the cloud rows to go with them.

    ``verify_deletes``: DELETEs are checked against the cloud (DQHASH_VERIFY_DELETES): every fourth one keeps
    its cloud row, an unpropagated delete.
    """
    from dqhash.core.hashing import RowHasher

    hasher = RowHasher("v2", HASH_COLUMNS, HASH_TYPES)
    rng = random.Random(seed)
    counts = _counts(n)
    scenarios = [name for name, k in counts.items() if name != "duplicate" for _ in range(k)]
    rng.shuffle(scenarios)
    w = Workload(scenario_counts=counts)
    match_events: list[Record] = []
    for i, scenario in enumerate(scenarios):
        pk = f"{run_id}-{i:07d}"
        event_id = f"{run_id}-e{i:07d}"
        cents = rng.randrange(100, 1_000_000)
        # on-prem renders 12.50 and +00:00; the cloud stores 12.5 and Z: the same values
        onprem_row = {
            "id": pk,
            "name": f"customer {i}",
            "amount": f"{cents // 100}.{cents % 100:02d}",
            "updated_at": "2024-05-01T12:00:00.000+00:00",
        }
        cloud_row = {
            **onprem_row,
            "amount": str(cents / 100),
            "updated_at": "2024-05-01T12:00:00Z",
            "notes": "not hashed",
        }
        digest, columns = hasher.hash_and_digests(onprem_row)
        event = {
            "event_id": event_id,
            "hash_onprem": digest.digest,
            "column_digests": columns,
            "partitionColumns": [{"type": "PK", "value": pk}],
            "event_ts": now_ms,
            "action": "UPDATE",
        }
        # Topic-1 keys are not guaranteed to be the PK: key half of them by event id.
        key = pk.encode() if i % 2 == 0 else event_id.encode()
        if scenario in ("match", "mismatch", "missing_cloud", "late_in_grace", "late_after_grace"):
            w.onprem_table.append(onprem_row)
        event = _scenario(w, scenario, i, pk, event, cloud_row, verify_deletes)
        if scenario == "broken_json":
            w.onprem.append((key, dumps_kept(event)[:-7]))
            continue
        record = (key, dumps_kept(event))
        w.onprem.append(record)
        if scenario == "match":
            match_events.append(record)
    for record in rng.sample(match_events, counts["duplicate"]):
        w.onprem.append(record)
        w.expected_duplicates += 1
    return w


def add_snapshot_scenarios(w: Workload, drifted: int, cloud_only: int, run_id: str = "demo") -> None:
    """A snapshot run after the stream: ``drifted`` matched rows changed in the cloud only (re-verification
    finds them first: CLOUD_DRIFT), ``cloud_only`` rows the on-prem table never had, and what the run must find.

    Every row of the on-prem table is compared; the cloud's rows of unpropagated deletes are cloud-only too.
    """
    onprem_ids = {row["id"] for row in w.onprem_table}
    matched = [row for row in w.rows_now if row["id"] in onprem_ids and not row["name"].endswith("(drifted)")]
    w.drift_rows = [{**row, "name": row["name"] + " (changed in the cloud)"} for row in matched[:drifted]]
    w.expected_audit["CLOUD_DRIFT", False] += len(w.drift_rows)
    w.cloud_only_rows = [
        {
            "id": f"{run_id}-cloud-only-{i:04d}",
            "name": f"orphan {i}",
            "amount": "1.5",
            "updated_at": "2024-05-01T12:00:00Z",
            "notes": "only in the cloud",
        }
        for i in range(cloud_only)
    ]
    kept_deletes = w.expected_audit["DELETE_NOT_PROPAGATED", False]
    counts = w.scenario_counts
    w.expected_snapshot.update(
        {
            "MATCH": counts["match"] + counts["late_in_grace"] + counts["late_after_grace"] - len(w.drift_rows),
            "MISMATCH": counts["mismatch"] + len(w.drift_rows),
            "MISSING_CLOUD": counts["missing_cloud"],
            "EXTRA_IN_CLOUD": cloud_only + kept_deletes,
        }
    )
    for status, n in w.expected_snapshot.items():
        w.expected_audit[status, False] += n
