"""Debezium's own snapshot read as dqhash snapshot runs: its ``r`` rows of each table form that table's run.

A connector's initial (or blocking) snapshot reads every table at one consistent point, and writes each row as an
``r`` event. Read as a snapshot run (docs/snapshots.md), those rows prove the whole table once the cloud side is
scanned: rows the cloud lacks, and rows only the cloud has, which comparing them one by one as changes never finds.

- **The run's id** is ``dbz-<digest of the snapshot's source position>``: every row of one snapshot carries the
  position of its consistent point (the LSN, SCN or binlog position it read at), so a reader that restarts in
  the middle names the run alike, and so do the workers reading other tables of the same snapshot. Each table's
  run is ``<run>:<table>``, the form ``dqhash snapshot scan --all-tables`` gives the cloud side.
- **Closed by Debezium's markers:** the row whose ``source.snapshot`` is ``last_in_data_collection`` (Debezium
  2.x), or ``last`` (the snapshot's very last row), closes its table's run; so does the table's first streamed
  change, which only comes once the table's snapshot is over (Debezium 1.x marks no table's last row), and so does
  the replication slot confirming a time after the run's last row (``core.idle_time``: streaming has begun).
- **A topic of several partitions** is read by several readers, each of whose part of the run ends on its own:
  each part's end markers name it and how many parts there are, and a Topic-1 partition's on-prem side is
  complete once every part has ended there (``core.snapshots``).
- **Counts and order:** each run counts its rows per Topic-1 partition for the end markers. The rows are sent
  before the markers on the same partitions, so a run that was counted from the middle (the reader restarted)
  names fewer rows than arrived, and is complete all the same (``core.snapshots``).
- **Its start:** a row's ``source.ts_ms`` is when it was read, later than the consistent point, which Debezium
  does not time. So the run's ``started_ts`` is the earliest time a record may carry: any stream event dqhash holds for a key the cloud scan finds
  speaks for that key (``classify``, rows 27 and 37), and no cloud-only row is called EXTRA_IN_CLOUD because of a
  change made while the snapshot ran.

``incremental`` rows (an incremental snapshot's re-reads, as ``dqhash repair signal`` asks for) are compared as
changes, not gathered into runs. Pure: the reader (``agents/debezium.py``) sends what this decides.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import NamedTuple

from dqhash.core.snapshots import table_run
from dqhash.core.timeutil import MIN_EPOCH_MS

#: ``source.snapshot`` of a row of a snapshot that forms runs; of its last row of a table; of an incremental re-read
SNAPSHOT_MARKS = frozenset({"true", "first", "first_in_data_collection", "last", "last_in_data_collection"})
LAST_MARKS = frozenset({"last", "last_in_data_collection"})
INCREMENTAL = "incremental"
#: a Debezium run's ``started_ts``: its consistent point is not timed (module docstring)
STARTED_TS = MIN_EPOCH_MS


class ClosedRun(NamedTuple):
    """A table's run whose on-prem side is complete from one change topic partition: its end markers and the
    side's record say this."""

    snapshot_id: str
    table: str
    rows: int
    per_partition: dict[int, int]
    first_read_ms: int
    last_read_ms: int
    source: str = ""  # the change topic partition ("topic:partition") it was read from


def run_of(position: str) -> str:
    """The run a snapshot's rows belong to, from the position of its consistent point."""
    return "dbz-" + hashlib.sha256(position.encode()).hexdigest()[:12]


class SnapshotRuns:
    """The open run of each (table, change topic partition) a reader is reading a snapshot from. A table whose
    topic has several partitions is read by several readers: each ends its own part of the run."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], tuple[str, Counter[int], list[int]]] = {}

    def row(self, table: str, source: str, position: str, partition: int, read_ms: int) -> tuple[str, ClosedRun | None]:
        """Count a snapshot row of ``table`` read from ``source`` and sent to Topic-1 ``partition``: the id of the
        run it belongs to, and the run it ends, if a new snapshot began before that one was marked closed."""
        snapshot_id = table_run(run_of(position), table)
        ended = None
        found = self._open.get((table, source))
        if found is not None and found[0] != snapshot_id:
            ended, found = self.close(table, source), None
        if found is None:
            found = self._open[(table, source)] = (snapshot_id, Counter(), [read_ms, read_ms])
        found[1][partition] += 1
        times = found[2]
        times[0], times[1] = min(times[0], read_ms), max(times[1], read_ms)
        return snapshot_id, ended

    def close(self, table: str, source: str) -> ClosedRun | None:
        """The run open on (``table``, ``source``), closed: after its last row, before the table's first streamed
        change there, or once the source has confirmed a time after its last row (``core.idle_time``)."""
        found = self._open.pop((table, source), None)
        if found is None:
            return None
        snapshot_id, counts, (first, last) = found
        return ClosedRun(snapshot_id, table, sum(counts.values()), dict(counts), first, last, source)

    def read_before(self, source: str, through: int) -> list[str]:
        """The tables with a run open on ``source`` whose last row was read before ``through``."""
        return [table for (table, src), (_, _, times) in self._open.items() if src == source and times[1] < through]

    def is_open(self, table: str, source: str) -> bool:
        return (table, source) in self._open
