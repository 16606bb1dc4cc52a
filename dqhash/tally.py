"""Counts per (partition, window): what the metrics topic publishes when a window closes.

Counting happens in memory on the hot path; the tick of each partition folds
the deltas into the durable window table and closes windows whose
``window_end + grace`` has passed. A verdict that lands in an already closed
window (a backfill, a late re-classification) folds in too and re-publishes
that window with its ``revision`` raised, so consumers upsert by
(window_start, partition, revision) and always hold the newest counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from dqhash.timeutil import format_ms

#: Outcomes that count towards the match rate (compared pairs).
COMPARED = ("MATCH", "MISMATCH", "MISSING_CLOUD", "HASH_VERSION_MISMATCH")


class WindowTally:
    def __init__(self) -> None:
        self._deltas: dict[int, dict[int, Counter]] = defaultdict(lambda: defaultdict(Counter))

    def count(self, partition: int, window_start: int, key: str, n: int = 1) -> None:
        self._deltas[partition][window_start][key] += n

    def take(self, partition: int) -> dict[int, Counter]:
        """The counts gathered since the last take, and reset them."""
        return self._deltas.pop(partition, {})

    def drop_partition(self, partition: int) -> None:
        self._deltas.pop(partition, None)


def new_window() -> dict:
    return {"counts": {}, "closed": False, "revision": 0}


def merge(window: dict, delta: Counter) -> dict:
    counts = dict(window["counts"])
    for key, n in delta.items():
        counts[key] = counts.get(key, 0) + n
    return {**window, "counts": counts}


def metrics_record(window: dict, partition: int, window_start: int, window_ms: int, now_ms: int) -> dict:
    counts = window["counts"]
    compared = sum(counts.get(status, 0) for status in COMPARED)
    return {
        "type": "window",
        "window_start": format_ms(window_start),
        "window_end": format_ms(window_start + window_ms),
        "partition": partition,
        "revision": window["revision"],
        "counts": counts,
        "compared": compared,
        "match_rate": round(counts.get("MATCH", 0) / compared, 6) if compared else None,
        "emitted_at": format_ms(now_ms),
    }
