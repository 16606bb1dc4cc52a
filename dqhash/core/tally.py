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
from dqhash.core.table_keys import SEPARATOR
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


def counter(table_prefix: str, status: str) -> str:
    """The key a status is counted under in a window: qualified by its table, bare for the default table.

    ``table_prefix`` is ``<table>`` U+001F, or "" for the default table (``core.table_keys``), so a deployment of
    one table counts exactly as before tables existed.
    """
    return table_prefix + status if table_prefix else status


def by_table(counts: Mapping[str, int], default_table: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """A window's counts as (totals over all tables, each table's own counts).

    Bare counters belong to ``default_table``; with none (a catalog without a default) they are counted in the
    totals only: they are dead letters whose table was never read.
    """
    totals: dict[str, int] = {}
    tables: dict[str, dict[str, int]] = {}
    for key, n in counts.items():
        table, sep, status = key.partition(SEPARATOR)
        if not sep:
            table, status = default_table, key
        totals[status] = totals.get(status, 0) + n
        if not table:
            continue
        own = tables.setdefault(table, {})
        own[status] = own.get(status, 0) + n
    return totals, tables


def compared_and_match_rate(counts: dict[str, int]) -> tuple[int, float | None]:
    """Pairs compared in a window, and the share of them that matched (None when none were compared)."""
    compared = sum(counts.get(status, 0) for status in COMPARED)
    return compared, round(counts.get("MATCH", 0) / compared, 6) if compared else None


def metrics_record(
    window: dict[str, Any], partition: int, window_start: int, window_ms: int, now_ms: int, default_table: str = ""
) -> dict[str, Any]:
    """What the metrics topic publishes for a window: totals over its tables, and each table's counts."""
    counts, tables = by_table(window["counts"], default_table)
    compared, match_rate = compared_and_match_rate(counts)
    per_table = {}
    for table, own in sorted(tables.items()):
        table_compared, table_rate = compared_and_match_rate(own)
        per_table[table] = {"counts": own, "compared": table_compared, "match_rate": table_rate}
    return {
        "type": "window",
        "window_start": format_ms(window_start),
        "window_end": format_ms(window_start + window_ms),
        "partition": partition,
        "revision": window["revision"],
        "counts": counts,
        "compared": compared,
        "match_rate": match_rate,
        "tables": per_table,
        "emitted_at": format_ms(now_ms),
    }
