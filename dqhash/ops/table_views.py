"""The tables views: each catalog table's verdicts, match rate and open problems, and one table in detail.

Built from the same inputs as the windows and mismatches views (the group's window records, the repair topic's
problems with their triage), so a table's row always agrees with them; ``agents.web`` serves them and
docs/web.md documents the shapes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dqhash.core.catalog import Catalog, TableSpec
from dqhash.core.progress import table_through
from dqhash.core.statuses import PROBLEMS
from dqhash.core.tally import by_table, compared_and_match_rate
from dqhash.core.timeutil import format_ms

#: problem statuses as their counters are named (late ones included: they are problems found late)
_PROBLEM_COUNTERS = frozenset({*(p.value for p in PROBLEMS), *(f"LATE_{p.value}" for p in PROBLEMS)})


def table_rows(
    windows: Iterable[tuple[int, dict]],
    problems: Sequence[Mapping[str, Any]],
    catalog: Catalog,
    window_ms: int,
    suspended: Mapping[str, Sequence[int]] | None = None,
) -> list[dict]:
    """One row per table with verdicts in the retained windows, or declared in the catalog: its counts, match
    rate, open problems (``problems`` annotated by ``ops.triage``) and newest window with a verdict. The worst
    match rate first, then by name. ``suspended``: table → the partitions where it is suspended at its failure cap
    (``engine.failure_caps``)."""
    counts: dict[str, Counter] = {}
    newest: dict[str, int] = {}
    for start, window in windows:
        for table, own in by_table(window["counts"], catalog.default)[1].items():
            counts.setdefault(table, Counter()).update(own)
            newest[table] = max(newest.get(table, start), start)
    open_problems = Counter(
        p.get("table") or catalog.default for p in problems if p.get("triage", {}).get("state", "open") == "open"
    )
    rows = []
    for table in sorted(set(counts) | set(catalog.tables) | set(open_problems) | set(suspended or ())):
        own = dict(counts.get(table, {}))
        compared, match_rate = compared_and_match_rate(own)
        rows.append(
            {
                "table": table,
                "declared": table in catalog.tables,
                "counts": own,
                "compared": compared,
                "match_rate": match_rate,
                "problems": sum(n for status, n in own.items() if status in _PROBLEM_COUNTERS),
                "open_problems": open_problems.get(table, 0),
                "last_window_end": format_ms(newest[table] + window_ms) if table in newest else None,
                "state": "suspended" if (suspended or {}).get(table) else "active",
                "suspended_partitions": list((suspended or {}).get(table, ())),
            }
        )
    rows.sort(key=lambda row: (row["match_rate"] if row["match_rate"] is not None else 2.0, row["table"]))
    return rows


def add_verified(
    rows: list[dict], verified: Mapping[str, Mapping[int, int | None]], partitions: int, now_ms: int
) -> None:
    """Each row's ``verified_through``: the newest commit time before which every change of the table has a final
    verdict (``core.progress``), its age in seconds, and the partitions that have no time yet (null: unknown,
    because no progress mark has reached every partition, or a worker did not answer)."""
    known = {row["table"] for row in rows}
    for table in verified:
        if table not in known:  # marked, but no verdict in the retained windows yet
            rows.append({"table": table, "declared": False, "counts": {}, "compared": 0, "match_rate": None,
                         "problems": 0, "open_problems": 0, "last_window_end": None, "state": "active",
                         "suspended_partitions": []})  # fmt: skip
    for row in rows:
        times = verified.get(row["table"], {})
        through = table_through(times, partitions)
        row["verified_through"] = format_ms(through) if through is not None else None
        row["verified_age_s"] = round(max(0, now_ms - through) / 1000, 1) if through is not None else None
        row["unverified_partitions"] = [p for p in range(partitions) if times.get(p) is None] if times else None


def spec_view(spec: TableSpec | None) -> dict | None:
    """A table's catalog entry as the detail view shows it."""
    if spec is None:
        return None
    return {
        "name": spec.name,
        "cloud": spec.cloud,
        "key": list(spec.key),
        "columns": list(spec.columns) if spec.columns is not None else None,
        "types": dict(spec.types),
        "rename": dict(spec.rename),
        "exclude": list(spec.exclude),
        "hash_strategy": spec.hash_strategy,
        "failure_cap": spec.failure_cap,
    }


def brief(row: Mapping[str, Any]) -> dict[str, Any]:
    """A table's row of ``/dq/tables`` as ``/dq/status`` lists it: how it stands, in a few fields."""
    keys = ("table", "state", "compared", "match_rate", "open_problems", "last_window_end", "verified_through",
            "missing_changes")  # fmt: skip
    return {key: row.get(key) for key in keys}
