"""A snapshot run's accounting in one partition: rows per side, completeness, verdict counts per token range.

One record per (partition, snapshot) lives in the pair table under a key no PK can have (``0xFD``), beside
the pairs whose arrivals it counts, so both are recovered together; each source's newest counted offset is
kept in it, so a record redelivered after a crash counts nothing twice (as windows do, ``core.tally``).

A side of a partition is complete once its end marker has come and as many distinct PKs of the snapshot
as the marker names have arrived on that side: the marker may overtake rows that went through the re-key
topic, and a count cannot be fooled by order. Only then are the partition's rows judged
(``classify.on_snapshot_complete``); no timer guesses.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from dqhash.core.timeutil import format_ms

SNAPSHOT_PREFIX = b"\xfd"
SIDES = ("onprem", "cloud")
_ONPREM, _CLOUD = SIDES


def table_run(snapshot_id: str, table: str | None) -> str:
    """The run id of one table's side in a run of several tables: ``<run>:<table>`` (both sides derive it alike)."""
    return snapshot_id if table is None else f"{snapshot_id}:{table}"


@lru_cache(maxsize=4096)
def snapshot_key(partition: int, snapshot_id: str) -> bytes:
    """Looked up for every snapshot row: a few runs and partitions, kept built."""
    return SNAPSHOT_PREFIX + f"{partition}:{snapshot_id}".encode()


def is_snapshot_key(key: bytes) -> bool:
    return key[:1] == SNAPSHOT_PREFIX


def snapshot_partition_of(key: bytes) -> int:
    return int(key[1:].split(b":", 1)[0])


def new_record(snapshot_id: str, partition: int, now_ms: int) -> dict[str, Any]:
    """``applied``: per source (on-prem, cloud, re-key, tick) the newest record offset counted here."""
    side = {"rows": 0, "expected": None, "started_ts": None, "ended_ms": None}
    return {
        "snapshot_id": snapshot_id,
        "partition": partition,
        "created_ms": now_ms,
        "onprem": dict(side),
        "cloud": dict(side),
        "counts": {},
        "ranges": {},
        "complete_ms": None,
        "judged_ms": None,
        "revision": 0,
        "published": 0,
        "applied": [-1, -1, -1, -1],
    }


def count_row(record: dict[str, Any], side: str, token_range: int | None) -> None:
    record[side]["rows"] += 1
    if token_range is not None:
        per_range = _range(record, token_range)
        per_range[side] = per_range.get(side, 0) + 1


def count_verdict(record: dict[str, Any], status: str, token_range: int | None, n: int = 1) -> None:
    """``n`` is -1 for the verdict a withdrawal takes back."""
    counts = record["counts"]
    counts[status] = counts.get(status, 0) + n
    if token_range is not None:
        per_range = _range(record, token_range)
        per_range[status] = per_range.get(status, 0) + n


def mark_end(
    record: dict[str, Any],
    side: str,
    rows: int,
    started_ts: int | None,
    now_ms: int,
    part: str | None = None,
    parts: int = 1,
) -> None:
    """A side's end marker; of one of several publishers (``part`` of ``parts``), the side ends with the last of
    theirs, expecting the rows of them all."""
    if part is None:
        record[side].update(expected=rows, started_ts=started_ts, ended_ms=now_ms)
        return
    got = record[side].setdefault("parts", {})
    got[part] = rows
    if len(got) >= parts:
        record[side].update(expected=sum(got.values()), started_ts=started_ts, ended_ms=now_ms)


def side_complete(record: dict[str, Any], side: str) -> bool:
    info = record[side]
    return info["expected"] is not None and info["rows"] >= info["expected"]


def is_complete(record: dict[str, Any]) -> bool:
    """Asked for every snapshot row until it holds: the two sides named, not a generator over ``SIDES``."""
    return side_complete(record, _ONPREM) and side_complete(record, _CLOUD)


def summary(record: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """What the snapshots topic carries for the partition (``recon:<id>:<partition>``)."""
    return {
        "type": "reconcile",
        "snapshot_id": record["snapshot_id"],
        "partition": record["partition"],
        "onprem": record["onprem"],
        "cloud": record["cloud"],
        "counts": record["counts"],
        "ranges": record["ranges"],
        "complete": record["complete_ms"] is not None,
        "judged": record["judged_ms"] is not None,
        "created_at": format_ms(record["created_ms"]),
        "judged_at": format_ms(record["judged_ms"]) if record["judged_ms"] is not None else None,
        "revision": record["revision"],
        "emitted_at": format_ms(now_ms),
    }


def _range(record: dict[str, Any], token_range: int) -> dict[str, int]:
    ranges = record["ranges"]
    key = str(token_range)  # a JSON object key
    found: dict[str, int] | None = ranges.get(key)
    if found is None:
        found = ranges[key] = {}
    return found
