"""Counts per (partition, window): what the metrics topic publishes when a window closes.

Each record folds its counts into its windows as it is processed (see
``dqhash.engine.window_book.WindowBook.fold``); the tick of each partition closes windows whose
``window_end + grace`` has passed. A verdict that lands in an already closed
window (a backfill, a late re-classification) folds in too and re-publishes
that window with its ``revision`` raised, so consumers upsert by
(window_start, partition, revision) and always hold the newest counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dqhash.core import statuses
from dqhash.core.timeutil import format_ms

#: Outcomes that count towards the match rate (compared pairs): ``core.statuses``.
COMPARED = statuses.COMPARED


def new_window() -> dict[str, Any]:
    """``applied``: per source (on-prem, cloud, re-key, tick) the newest record offset counted here."""
    return {"counts": {}, "closed": False, "revision": 0, "published": 0, "applied": [-1, -1, -1, -1]}


def merge(window: dict[str, Any], delta: Mapping[str, int]) -> dict[str, Any]:
    """Adds ``delta`` to the window's counts, in place (the window is a batch's own decoded copy)."""
    counts = window["counts"]
    for key, n in delta.items():
        counts[key] = counts.get(key, 0) + n
    return window


def compared_and_match_rate(counts: dict[str, int]) -> tuple[int, float | None]:
    """Pairs compared in a window, and the share of them that matched (None when none were compared)."""
    compared = sum(counts.get(status, 0) for status in COMPARED)
    return compared, round(counts.get("MATCH", 0) / compared, 6) if compared else None


def metrics_record(
    window: dict[str, Any], partition: int, window_start: int, window_ms: int, now_ms: int
) -> dict[str, Any]:
    counts = window["counts"]
    compared, match_rate = compared_and_match_rate(counts)
    return {
        "type": "window",
        "window_start": format_ms(window_start),
        "window_end": format_ms(window_start + window_ms),
        "partition": partition,
        "revision": window["revision"],
        "counts": counts,
        "compared": compared,
        "match_rate": match_rate,
        "emitted_at": format_ms(now_ms),
    }
