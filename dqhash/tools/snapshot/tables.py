"""Snapshot runs of many tables: each catalog table is its own run, ``<run>:<table>``, on both sides.

``dqhash snapshot scan --all-tables`` walks every declared table of the catalog, one after another, under one
rows/s budget and one checkpoint file; ``--ranges-from`` narrows it to the tables, and the token ranges in
them, where an earlier run found differences. The report of a run of several tables lists each table's run
(``core.snapshot_report.catalog_report``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dqhash.cloud.scanner import RangeScan
from dqhash.core.catalog import TableSpec
from dqhash.core.hashing import RowHasher
from dqhash.settings import Settings
from dqhash.tools.snapshot.common import Budget, say, table_run
from dqhash.tools.snapshot.digests import DigestPlan
from dqhash.tools.snapshot.scan import Checkpoint, scan


async def scan_tables(
    settings: Settings,
    tables: Sequence[TableSpec],
    open_source: Callable[[TableSpec], RangeScan],
    snapshot_id: str,
    splits: int,
    only: dict[str, set[int]] | None,
    parallel: int,
    rows_per_second: float,
    checkpoint: Checkpoint,
    digests: DigestPlan | None = None,
) -> dict[str, int]:
    """Scan each table as its own run; table → token ranges that failed (0: its cloud side is complete).

    ``only``: table → the token ranges to cover (a table it does not name is not scanned); None: every range
    of every table."""
    budget = Budget(rows_per_second)
    failed: dict[str, int] = {}
    wanted = [t for t in tables if only is None or t.name in only]
    for number, spec in enumerate(wanted, 1):
        run_id = table_run(snapshot_id, spec.name)
        say(f"dqhash snapshot scan: table {number} of {len(wanted)}: {spec.name} ({spec.cloud}) as run {run_id}")
        hasher = RowHasher(spec.hash_strategy, spec.columns, spec.types)
        source = open_source(spec)
        try:
            ranges = only.get(spec.name) if only is not None else None
            failed[spec.name] = await scan(
                settings,
                source,
                hasher,
                run_id,
                splits,
                ranges,
                parallel,
                budget,
                checkpoint.run(run_id),
                spec,
                digests,
            )
        finally:
            source.close()
    return failed
