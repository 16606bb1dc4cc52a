"""The connector's snapshots and truncates as snapshot runs, written by the Debezium reader (``core.debezium_runs``).

Each run's rows go to Topic-1 at their pair key's partition; when a run's part ends, its end markers go to every
Topic-1 partition (naming the part and how many there are, when the change topic has several partitions), and
its on-prem side to the snapshots topic, with the command that scans its cloud side.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from dqhash.core.debezium import Change, Truncate
from dqhash.core.debezium_runs import LAST_MARKS, SNAPSHOT_MARKS, STARTED_TS, ClosedRun, SnapshotRuns, run_of
from dqhash.core.partitioning import partition_for
from dqhash.core.records import Out
from dqhash.core.snapshots import table_run
from dqhash.core.timeutil import format_ms, now_ms
from dqhash.core.tuples import build

log = logging.getLogger("dqhash.agents.debezium")


class ConnectorRuns:
    def __init__(self, settings: Any, partitions: dict[str, int]) -> None:
        #: change topic → its partition count: how many parts a run read from it has
        self.settings, self.partitions = settings, partitions
        self.runs = SnapshotRuns()
        #: (table, source) → the run its side record was last written for
        self._announced: dict[tuple[str, str], str] = {}

    def for_change(self, change: Change, pk: str, source: str) -> tuple[str | None, list[Out], list[Out]]:
        """(the run a snapshot row belongs to, the ends of runs it closes before it, and after it): a streamed
        change closes its table's open run before it; the row Debezium marks as its table's last, after it."""
        if not self.settings.debezium_snapshot_runs:
            return None, [], []
        runs = self.runs
        if change.op != "r" or change.snapshot not in SNAPSHOT_MARKS:
            return None, self.ended(runs.close(change.table, source)), []
        partition = partition_for(pk, self.settings.partitions)
        snapshot_id, ended = runs.row(change.table, source, change.position, partition, change.source_ts)
        before = self.ended(ended)
        if before or self._announced.get((change.table, source)) != snapshot_id:
            self._announced[(change.table, source)] = snapshot_id
            before.append(self._side_record(snapshot_id, change.table, "running", change.source_ts))
        after = self.ended(runs.close(change.table, source)) if change.snapshot in LAST_MARKS else []
        return snapshot_id, before, after

    def truncated(self, truncate: Truncate, source: str, deletes: list[Out]) -> list[Out]:
        """A truncate: the table's open run there closed, the deletes, then a run of no rows as of its commit
        time, whose cloud scan proves the cloud table empty but for rows changed since."""
        table = truncate.table
        log.warning(
            "table %s was truncated at %s: once the cloud has truncated too, prove it empty with `dqhash snapshot "
            "scan --snapshot-id %s --table %s`", table, format_ms(truncate.source_ts), run_of(truncate.position), table,
        )  # fmt: skip
        empty = ClosedRun(table_run(run_of(truncate.position), table), table, 0, {}, truncate.source_ts,
                          truncate.source_ts)  # fmt: skip
        return [*self.ended(self.runs.close(table, source)), *deletes, *self.ended(empty, truncate.source_ts)]

    def quiet(self, source: str, through: int) -> list[Out]:
        """``source`` read to its end after the slot confirmed ``through``: the runs read from it before then are
        over (streaming has begun since their last row)."""
        return [
            out
            for table in self.runs.read_before(source, through)
            for out in self.ended(self.runs.close(table, source))
        ]

    def ended(self, run: ClosedRun | None, truncated_at: int | None = None) -> list[Out]:
        """A closed run's end marker on every Topic-1 partition, then its on-prem side's record, ``done``; of a
        truncate's run, starting at its commit time (a row changed since is the stream's to judge)."""
        if run is None:
            return []
        log.info(
            "Debezium snapshot of %s: %d row(s) read from %s, its part of run %s closed; prove it with `dqhash "
            "snapshot scan --snapshot-id %s --table %s`", run.table, run.rows, run.source or "its topic",
            run.snapshot_id, run.snapshot_id.rsplit(":", 1)[0], run.table,
        )  # fmt: skip
        self._announced.pop((run.table, run.source), None)
        parts = self.partitions.get(run.source.rpartition(":")[0], 1) if run.source else 1
        end: dict[str, Any] = {"snapshot_id": run.snapshot_id, "snapshot_end": True,
                               "started_ts": truncated_at or STARTED_TS}  # fmt: skip
        if parts > 1:
            end |= {"part": run.source, "parts": parts}
        topic = self.settings.onprem_topic
        markers = [
            build(Out, (topic, None, orjson.dumps({**end, "rows": run.per_partition.get(p, 0)}), None, p))
            for p in range(self.settings.partitions)
        ]
        return [*markers, self._side_record(run.snapshot_id, run.table, "done", run.first_read_ms, run, truncated_at)]

    def _side_record(
        self,
        snapshot_id: str,
        table: str,
        state: str,
        started_ms: int,
        run: ClosedRun | None = None,
        truncated_at: int | None = None,
    ) -> Out:
        """The run's on-prem side on the snapshots topic (``onprem:<id>``), as ``dqhash snapshot publish`` writes it
        (of a run read in several parts, the part that wrote last)."""
        now = now_ms()
        record: dict[str, Any] = {
            "type": "side", "side": "onprem", "snapshot_id": snapshot_id, "state": state, "table": table,
            "source": "debezium", "rows": run.rows if run else 0, "errors": 0, "started_at": format_ms(started_ms),
            "updated_at": format_ms(now), "elapsed_s": round(max(0, now - started_ms) / 1000, 3),
            "scan_with": f"dqhash snapshot scan --snapshot-id {snapshot_id.rsplit(':', 1)[0]} --table {table}",
        }  # fmt: skip
        if truncated_at is not None:
            record["truncated_at"] = format_ms(truncated_at)
        if run is not None:
            record |= {"finished_at": record["updated_at"], "percent": 100.0, "part": run.source,
                       "partitions": {str(p): n for p, n in sorted(run.per_partition.items())}}  # fmt: skip
        return Out(self.settings.snapshot_topic, f"onprem:{snapshot_id}".encode(), orjson.dumps(record))
