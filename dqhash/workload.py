"""A realistic mixed workload with known answers, for the demo, the benchmark and the tests.

Pure: it only builds records and the counts a correct pipeline must report.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field

import orjson

#: Share of on-prem records per scenario (sums to 1).
MIX: dict[str, float] = {
    "match": 0.70,
    "mismatch": 0.06,
    "missing_cloud": 0.04,  # half never get a cloud hash, half get hash_cloud: null
    "late_in_grace": 0.04,  # cloud hash arrives after a delay shorter than the grace
    "late_after_grace": 0.03,  # cloud hash arrives after MISSING_CLOUD was emitted
    "delete": 0.04,
    "duplicate": 0.04,  # an earlier match event replayed byte for byte
    "invalid_hash": 0.01,
    "missing_pk": 0.01,
    "unknown_action": 0.015,
    "broken_json": 0.015,
}

Record = tuple[bytes | None, bytes]  # (key, value)


@dataclass
class Workload:
    onprem: list[Record] = field(default_factory=list)  # in send order; duplicates come after their originals
    cloud_now: list[Record] = field(default_factory=list)
    cloud_in_grace: list[Record] = field(default_factory=list)
    cloud_late: dict[str, Record] = field(default_factory=dict)  # pk → record, sent after its MISSING_CLOUD
    expected_audit: Counter = field(default_factory=Counter)  # (status, late) → n
    expected_dlq: Counter = field(default_factory=Counter)  # reason → n
    expected_duplicates: int = 0
    scenario_counts: Counter = field(default_factory=Counter)

    @property
    def cloud_records(self) -> int:
        return len(self.cloud_now) + len(self.cloud_in_grace) + len(self.cloud_late)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _counts(n: int) -> Counter:
    counts = Counter({name: int(n * share) for name, share in MIX.items()})
    counts["match"] += n - sum(counts.values())
    if counts["duplicate"] > counts["match"]:
        counts["match"], counts["duplicate"] = counts["match"] + counts["duplicate"], 0
    return counts


def build(n: int, now_ms: int, seed: int = 7, run_id: str = "demo") -> Workload:
    """``n`` on-prem records with every scenario; cloud records to go with them."""
    rng = random.Random(seed)
    counts = _counts(n)
    scenarios = [name for name, k in counts.items() if name != "duplicate" for _ in range(k)]
    rng.shuffle(scenarios)
    w = Workload(scenario_counts=counts)
    match_events: list[Record] = []
    for i, scenario in enumerate(scenarios):
        pk = f"{run_id}-{i:07d}"
        event_id = f"{run_id}-e{i:07d}"
        row_hash = digest(pk)
        event = {"event_id": event_id, "hash_onprem": row_hash, "partitionColumns": [{"type": "PK", "value": pk}],
                 "event_ts": now_ms, "action": "UPDATE"}
        # Topic-1 keys are not guaranteed to be the PK: key half of them by event id.
        key = pk.encode() if i % 2 == 0 else event_id.encode()
        cloud = {"pk": pk, "hash_cloud": row_hash, "cloud_ts": now_ms + 5}
        if scenario == "match":
            w.cloud_now.append(_record(pk, cloud))
            w.expected_audit["MATCH", False] += 1
        elif scenario == "mismatch":
            w.cloud_now.append(_record(pk, {**cloud, "hash_cloud": digest(pk + "-drifted")}))
            w.expected_audit["MISMATCH", False] += 1
        elif scenario == "missing_cloud":
            if i % 2:
                w.cloud_now.append(_record(pk, {**cloud, "hash_cloud": None}))
            w.expected_audit["MISSING_CLOUD", False] += 1
        elif scenario == "late_in_grace":
            w.cloud_in_grace.append(_record(pk, cloud))
            w.expected_audit["MATCH", False] += 1
        elif scenario == "late_after_grace":
            w.cloud_late[pk] = _record(pk, cloud)
            w.expected_audit["MISSING_CLOUD", False] += 1
            w.expected_audit["MATCH", True] += 1
        elif scenario == "delete":
            event = {**event, "action": "DELETE"}
            del event["hash_onprem"]
            w.expected_audit["SKIPPED_DELETE", False] += 1
        elif scenario == "invalid_hash":
            event["hash_onprem"] = "not-a-sha256"
            w.expected_dlq["INVALID_HASH_FORMAT"] += 1
        elif scenario == "missing_pk":
            event["partitionColumns"] = []
            w.expected_dlq["MISSING_PK"] += 1
        elif scenario == "unknown_action":
            event["action"] = "MERGE"
            w.expected_dlq["UNKNOWN_ACTION"] += 1
        elif scenario == "broken_json":
            w.onprem.append((key, orjson.dumps(event)[:-7]))
            w.expected_dlq["INVALID_JSON"] += 1
            continue
        record = (key, orjson.dumps(event))
        w.onprem.append(record)
        if scenario == "match":
            match_events.append(record)
    for record in rng.sample(match_events, counts["duplicate"]):
        w.onprem.append(record)
        w.expected_duplicates += 1
    return w


def _record(pk: str, doc: dict) -> Record:
    return pk.encode(), orjson.dumps(doc)
