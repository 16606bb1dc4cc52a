"""Window accounting per partition: counts folded exactly once, windows closed when due, late ones republished.

Which windows are open, closed or due again is derived state, rebuilt from the table on assignment
(``Takeover``); the counts themselves live in the table. Each window remembers the newest offset per
source it has counted, so a record redelivered after a crash (its counts already in) adds nothing:
window totals stay exact under failover.
"""

from __future__ import annotations

from typing import Any

from dqhash.core.jsontext import dumps_kept
from dqhash.core.records import Out
from dqhash.core.tally import merge, metrics_record, new_window
from dqhash.core.window_keys import window_key
from dqhash.engine.effects import Effects
from dqhash.engine.failure_caps import FailureCaps
from dqhash.engine.ports import MetricsSink
from dqhash.engine.staged import StagedTable

#: Header on audit / metrics records a new partition owner publishes again (see ``Takeover``).
REPUBLISHED = [("dq.republished", b"1")]
#: a closed window revised by late verdicts is published again at most this often
REPUBLISH_EVERY_MS = 1_000


class WindowBook:
    def __init__(
        self,
        metrics_topic: str,
        window_ms: int,
        grace_ms: int,
        retention_ms: int,
        metrics: MetricsSink,
        default_table: str = "",
        caps: FailureCaps | None = None,
    ) -> None:
        #: the table of bare counters (``tally.counter``), as the published record names it
        self.default_table = default_table
        self.metrics_topic, self.window_ms, self.grace_ms, self.retention_ms = (
            metrics_topic,
            window_ms,
            grace_ms,
            retention_ms,
        )
        self.metrics = metrics
        self.open: dict[int, set[int]] = {}
        self.closed: dict[int, set[int]] = {}
        #: closed windows whose counts changed since they were published (late verdicts): published again
        self.republish: dict[int, set[int]] = {}
        #: partition → window start → the latest deadline of an event of that window: a window closes only
        #: once every event in it had its full grace (backfills included)
        self.due: dict[int, dict[int, int]] = {}
        #: the failure caps: each table's problem verdicts in a partition's retained windows (``FailureCaps``)
        self.caps = caps or FailureCaps(None, 1)

    def fold(self, staged: StagedTable, effects: Effects) -> None:
        """Fold one record's counts into its windows (in the batch's staged copies, written once at its end)."""
        partition, source, offset = effects.partition, effects.source, effects.offset
        counts = effects.counts
        for start, delta in sorted(counts.items()) if len(counts) > 1 else counts.items():
            key = window_key(partition, start)
            window = staged.window(partition, key) or new_window()
            if offset <= window["applied"][source]:
                continue
            merge(window, delta)  # in place: the batch's staged copy, written once at its end
            window["applied"][source] = offset
            self.caps.counted(partition, delta)
            if window["closed"]:
                window["revision"] += 1  # a verdict for an already published window: publish again
                self.republish.setdefault(partition, set()).add(start)
            else:
                self.open.setdefault(partition, set()).add(start)
            staged.put_window(partition, key, window)

    def extend_due(self, partition: int, start: int, due: int) -> None:
        """An event of the window ``start`` has its deadline at ``due``: the window waits for it."""
        window_due = self.due.setdefault(partition, {})
        if due > window_due.get(start, 0):
            window_due[start] = due

    def close_due(self, staged: StagedTable, partition: int, now: int, horizon: int) -> list[Out]:
        """Publish windows whose events all had their grace, republish revised ones, drop expired ones."""
        outs = []
        size, grace = self.window_ms, self.grace_ms
        open_windows = self.open.setdefault(partition, set())
        closed = self.closed.setdefault(partition, set())
        window_due = self.due.setdefault(partition, {})
        closing = sorted(s for s in open_windows if max(s + size + grace, window_due.get(s, 0)) <= horizon)
        for start in closing:
            window_due.pop(start, None)
            open_windows.discard(start)
            closed.add(start)
            outs.append(self._publish(staged, partition, start, now, close=True))
        outs.extend(self._republish_due(staged, partition, now))
        for start in [s for s in closed if s + size + self.retention_ms <= now]:
            closed.discard(start)
            expired = staged.window(partition, window_key(partition, start))
            if expired is not None:  # its problems no longer count against the tables' caps
                self.caps.counted(partition, expired["counts"], -1)
            staged.put_window(partition, window_key(partition, start), None)
        return outs

    def _republish_due(self, staged: StagedTable, partition: int, now: int) -> list[Out]:
        """Revised windows published again, each at most once a second (``REPUBLISH_EVERY_MS``): late verdicts
        trickle in over many ticks, and a record that carries every table's counts is not worth sending on each."""
        revised = self.republish.get(partition)
        if not revised:
            return []
        outs = []
        for start in sorted(revised):
            window = staged.window(partition, window_key(partition, start))
            if window is not None and now - window.get("published_ms", 0) < REPUBLISH_EVERY_MS:
                continue  # published less than a window ago: the next tick past it sends the newest counts
            revised.discard(start)
            outs.append(self._publish(staged, partition, start, now, close=False))
        return outs

    def _publish(self, staged: StagedTable, partition: int, start: int, now: int, close: bool) -> Out:
        key = window_key(partition, start)
        window = dict(staged.window(partition, key) or new_window())
        if close:
            window.update(closed=True, revision=window["revision"] + 1)
        window.update(published=window["revision"], published_ms=now)
        staged.put_window(partition, key, window)
        record = metrics_record(window, partition, start, self.window_ms, now, self.default_table)
        self.metrics.window_closed(partition, record["compared"], record["match_rate"])
        return self._out(partition, start, record)

    def _out(
        self, partition: int, start: int, record: dict[str, Any], headers: list[tuple[str, bytes]] | None = None
    ) -> Out:
        return Out(self.metrics_topic, f"{partition}:{start}".encode(), dumps_kept(record), headers)

    def published_again(self, partition: int, start: int, window: dict[str, Any]) -> list[Out]:
        """The record as it was published (same ``emitted_at``), marked as published again."""
        at = window["published_ms"]
        record = metrics_record(window, partition, start, self.window_ms, at, self.default_table)
        return [self._out(partition, start, record, REPUBLISHED)]

    def starts(self, partition: int) -> set[int]:
        """Every window of the partition this worker knows of (open or closed)."""
        return self.open.get(partition, set()) | self.closed.get(partition, set())

    def partitions(self) -> set[int]:
        return set(self.open) | set(self.closed) | set(self.due)

    def forget(self, partition: int) -> None:
        for derived in (self.open, self.closed, self.republish, self.due):
            derived.pop(partition, None)
        self.caps.forget(partition)
