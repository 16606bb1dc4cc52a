"""Per partition and table: the progress marks read and the changes still pending (``core.progress``).

Derived state, like the deadline index: the pending changes are rebuilt from the pair states on assignment
(``Takeover``), and marks are sent again by their producer every few seconds, so a new owner knows a table's time
again shortly after it takes a partition over; until then the table's time is unknown, never too new.
"""

from __future__ import annotations

from typing import Any

from dqhash.core.jsontext import dumps_kept
from dqhash.core.pair_state import PairState
from dqhash.core.pending_changes import PendingChanges
from dqhash.core.progress import Progress, mark_through, partition_through
from dqhash.core.records import Out
from dqhash.core.table_keys import table_of
from dqhash.core.timeutil import format_ms
from dqhash.engine.ports import MetricsSink

PENDING = "PENDING"
#: a partition's verified-through times are published (metrics topic) and gauged at most this often
PUBLISH_EVERY_MS = 1_000


def pending_change(state: PairState | None) -> int | None:
    """The commit time of the change a pair waits on a verdict for: None when it waits for none (settled, a
    snapshot row or a re-verification, which are not changes)."""
    tracked = state.tracked if state is not None else None
    if tracked is None or tracked.status != PENDING or tracked.snapshot_id is not None or tracked.reverify:
        return None
    return tracked.event_ts


class VerifiedBook:
    def __init__(
        self,
        default_table: str,
        metrics_topic: str = "",
        metrics: MetricsSink | None = None,
        capacity: int | None = None,
    ) -> None:
        self.default_table, self.metrics_topic, self.metrics = default_table, metrics_topic, metrics
        #: pending pairs kept per partition at most (``core.pending_changes``); None: unbounded
        self.capacity = capacity
        self._published: dict[int, int] = {}
        #: partition → table → source → (sources, through)
        self._marks: dict[int, dict[str, dict[str, tuple[int, int]]]] = {}
        #: partition → its pending changes per table
        self._pending: dict[int, PendingChanges] = {}
        #: partition → the pending changes a refill scan is gathering (they replace the partition's at its end)
        self._refills: dict[int, PendingChanges] = {}

    def note(self, partition: int, marks: list[Progress]) -> None:
        tables = self._marks.setdefault(partition, {})
        for mark in marks:
            sources = tables.setdefault(mark.table, {})
            known = sources.get(mark.source)
            if known is None or mark.through >= known[1]:  # a mark sent again after a restart may be older
                sources[mark.source] = (mark.sources, mark.through)

    def track(self, partition: int, key: str, state: PairState | None) -> None:
        """A pair's new state: its pending change (if any) is what holds its table back."""
        event_ts = pending_change(state)
        table = table_of(key, self.default_table)
        pending = self._pending.get(partition)
        if pending is None:
            pending = self._pending[partition] = PendingChanges(self.capacity)
        pending.track(table, key, event_ts)
        if self._refills:
            refill = self._refills.get(partition)
            if refill is not None:
                refill.track(table, key, event_ts)

    # --- refills (``core.pending_changes``) --------------------------------------------------------

    def refill_wanted(self, partition: int) -> bool:
        """Changes were forgotten and few are kept: time to learn the exact times again from a scan."""
        pending = self._pending.get(partition)
        return (
            pending is not None
            and partition not in self._refills
            and pending.count <= (self.capacity or 0) // 4
            and pending.forgot_any()
        )

    def begin_refill(self, partition: int) -> None:
        self._refills[partition] = PendingChanges(self.capacity)

    def refill(self, partition: int, key: str, state: PairState | None) -> None:
        """A pair the refill's scan read (its state as it is now)."""
        self._refills[partition].track(table_of(key, self.default_table), key, pending_change(state))

    def refilling(self, partition: int) -> bool:
        return partition in self._refills

    def end_refill(self, partition: int) -> None:
        refill = self._refills.pop(partition, None)
        if refill is not None:
            self._pending[partition] = refill

    def through(self, partition: int) -> dict[str, int | None]:
        """Each table with a mark on the partition → its verified-through time there (None: not every source
        has spoken yet)."""
        return {
            table: partition_through(mark_through(sources), self._oldest_pending(partition, table))
            for table, sources in self._marks.get(partition, {}).items()
        }

    def _oldest_pending(self, partition: int, table: str) -> int | None:
        pending = self._pending.get(partition)
        return pending.oldest(table) if pending is not None else None

    def pending(self, partition: int, table: str) -> int:
        """The table's pending changes kept on the partition (every one of them unless ``pending_more``)."""
        pending = self._pending.get(partition)
        return pending.kept(table) if pending is not None else 0

    def pending_more(self, partition: int, table: str) -> bool:
        """Some of the table's pending changes on the partition wait in the pair table, not counted in memory."""
        pending = self._pending.get(partition)
        return pending is not None and pending.forgot(table)

    def partitions(self) -> set[int]:
        return set(self._marks) | set(self._pending)

    def publish_due(self, partition: int, now: int) -> list[Out]:
        """The partition's times on the metrics topic (``type: verified``, keyed ``verified:<partition>``), and
        the age of each table's oldest time over this worker's partitions as a gauge, at most once a second."""
        if now - self._published.get(partition, -PUBLISH_EVERY_MS) < PUBLISH_EVERY_MS:
            return []
        self._published[partition] = now
        times = self.through(partition)
        if not times:
            return []
        if self.metrics is not None:
            for table, oldest in self.oldest().items():
                if oldest is not None:
                    self.metrics.verified_age(table, max(0.0, (now - oldest) / 1000))
        tables = {table: self._published_times(partition, table, t) for table, t in sorted(times.items())}
        record = {"type": "verified", "partition": partition, "tables": tables, "emitted_at": format_ms(now)}
        return [Out(self.metrics_topic, f"verified:{partition}".encode(), dumps_kept(record))]

    def _published_times(self, partition: int, table: str, through: int | None) -> dict[str, Any]:
        times = {"through": format_ms(through) if through is not None else None, "through_ms": through,
                 "pending": self.pending(partition, table)}  # fmt: skip
        if self.pending_more(partition, table):
            times["pending_more"] = True
        return times

    def oldest(self) -> dict[str, int | None]:
        """Each table's oldest time over the partitions this worker holds (None: one of them has none yet)."""
        oldest: dict[str, int | None] = {}
        for partition in self.partitions():
            for table, t in self.through(partition).items():
                known = oldest.get(table, t)
                oldest[table] = None if t is None or known is None else min(known, t)
        return oldest

    def forget(self, partition: int) -> None:
        for derived in (self._marks, self._pending, self._refills, self._published):
            derived.pop(partition, None)
