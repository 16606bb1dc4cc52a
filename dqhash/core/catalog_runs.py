"""The report of a snapshot run of several tables: each table's run (``<run>:<table>``), and the run as a whole.

Each table of a catalog-wide run is a run of its own on both sides (``tools.snapshot.tables``); this module
gathers them back under their run, so an operator reads one line per table and one verdict for the catalog.
"""

from __future__ import annotations

from typing import Any

from dqhash.core.snapshot_report import build_report, summaries

#: a run of several tables is as far as its least advanced table, in this order
_ORDER = ("failed", "stalled", "running", "abandoned", "complete")


def table_runs(records: list[dict[str, Any]], run: str) -> list[str]:
    """The ids of the tables' runs of ``run``."""
    prefix = f"{run}:"
    return sorted({r["snapshot_id"] for r in records if str(r.get("snapshot_id", "")).startswith(prefix)})


def catalog_report(records: list[dict[str, Any]], run: str, partitions: int, now_ms: int) -> dict[str, Any]:
    """Each table's state, rows and counts, worst state first, and the run's state: its least advanced table's."""
    ids = set(table_runs(records, run))
    rows = [row for row in summaries(records, partitions, now_ms) if row["snapshot_id"] in ids]
    for row in rows:
        row["table"] = row["table"] or row["snapshot_id"][len(run) + 1 :]
    rows.sort(key=lambda row: (_rank(row["state"]), row["table"]))
    states = {row["state"] for row in rows}
    differing = {
        row["table"]: build_report(records, row["snapshot_id"], partitions, now_ms)["ranges_with_differences"]
        for row in rows
    }
    return {
        "snapshot_id": run,
        "state": min(states, key=_rank) if states else "unknown",
        "tables": rows,
        "ranges_with_differences": {table: ranges for table, ranges in differing.items() if ranges},
    }


def render_catalog_report(report: dict[str, Any]) -> str:
    lines = [f"snapshot {report['snapshot_id']}: {report['state']}, {len(report['tables'])} table(s)"]
    for row in report["tables"]:
        rate = row["match_rate"]
        lines.append(
            f"  {row['table']:40s} {row['state']:9s} {row['rows']['onprem']:>10,} on-prem {row['rows']['cloud']:>10,} "
            f"cloud  match {f'{rate:.2%}' if rate is not None else 'n/a':>8s}  {row['counts']}"
        )
    for table, ranges in report["ranges_with_differences"].items():
        lines.append(f"  {table}: differences in {len(ranges)} token range(s); rerun with --ranges-from")
    return "\n".join(lines)


def _rank(state: str) -> int:
    return _ORDER.index(state) if state in _ORDER else 0
