"""Continuous re-verification: settled MATCH pairs are read again from the cloud, within a rows/s budget.

A row that matched can drift afterwards (a bad repair, a cloud-side write, a lost SSTable) without any
on-prem change to show it. Each partition walks its pairs in key order, a pass after another, and asks the
cloud hash producer to re-read those settled as MATCH for at least ``min_age_ms``: in steady state every
pass re-reads the pairs verified longest ago first. The budget (``DQHASH_REVERIFY_ROWS_PER_SECOND``) is for
the whole deployment: each partition spends its share, whichever worker owns it. The outcome is judged by
``classify`` (``CLOUD_DRIFT``, ``CLOUD_VANISHED``, rechecked first; or the row as it was, counted).

Many tables share the budget by rows: a pass walks the pair keys of every table (``<table>`` U+001F ``<pk>``, so
one table after another) and re-reads each settled pair once, so every row of every table is re-verified at the
same interval, and a table's share of the budget is its share of the rows. A table suspended at its failure cap
is skipped (``engine.failure_caps``): its rows are not validated until it resumes.
"""

from __future__ import annotations

from typing import Any

from dqhash.core import classify
from dqhash.core.pair_state import Rules
from dqhash.core.records import Out
from dqhash.core.snapshots import SNAPSHOT_PREFIX
from dqhash.core.statuses import Status
from dqhash.core.table_keys import SEPARATOR
from dqhash.engine.cursors import Cursors
from dqhash.engine.effects import Effects
from dqhash.engine.ports import Clock, Scan, Table
from dqhash.engine.staged import StagedTable

#: Pair keys read per partition and tick while looking for pairs to re-read (bounded work per tick), in reads of
#: SCAN_BATCH keys; the credit may go below zero by what one read found, and is paid back before the next.
SCAN_LIMIT, SCAN_BATCH = 2_000, 200
_MATCH = f'"{Status.MATCH.value}"'.encode()
SEPARATOR_BYTES = SEPARATOR.encode()


class Reverifier:
    def __init__(
        self,
        pairs: Table,
        scan: Scan,
        rules: Rules,
        rows_per_second: float,
        partitions: int,
        min_age_ms: int,
        clock: Clock,
    ) -> None:
        self.rules, self.clock = rules, clock
        self.min_age_ms = min_age_ms
        #: each partition's share of the budget
        self.rate_ms = rows_per_second / max(1, partitions) / 1000
        self.enabled = rows_per_second > 0 and rules.lookups
        self._passes = Cursors(pairs, scan)
        self._credit: dict[int, float] = {}
        self._last: dict[int, int] = {}

    def sweep(self, staged: StagedTable, effects: Effects, updates: Any) -> list[Out]:
        if not self.enabled:
            return []
        partition, now = effects.partition, self.clock()
        last = self._last.get(partition, now)
        self._last[partition] = now
        # credit for the time since the last tick, capped at two seconds' worth: a pause is not caught up on
        credit = min(self._credit.get(partition, 0.0) + (now - last) * self.rate_ms, max(1.0, 2000 * self.rate_ms))
        outs: list[Out] = []
        if credit < 1:
            self._credit[partition] = credit
            return outs
        read = 0
        if not self._passes.active(partition, "reverify"):
            self._passes.begin(partition, "reverify")  # a pass after another
        settled_before = now - self.min_age_ms
        while credit >= 1:
            items, done = self._passes.read(partition, "reverify", SCAN_BATCH)
            for key, raw in items:  # every pair of a read is judged: a read's overshoot is paid back next ticks
                if key[:1] < SNAPSHOT_PREFIX and _MATCH in raw and not suspended(updates, partition, key):
                    state = staged.state(partition, key)
                    if state is not None and state.updated_ms <= settled_before:
                        step = classify.reverify(state, now, self.rules)
                        if step is not None:
                            outs.extend(updates.record_step(effects, key.decode(), key, state, step))
                            credit -= 1
            read += len(items)
            if done or read >= SCAN_LIMIT:
                break
        self._credit[partition] = credit
        return outs

    def forget(self, partition: int) -> None:
        self._passes.forget(partition)
        for derived in (self._credit, self._last):
            derived.pop(partition, None)


def suspended(updates: Any, partition: int, key: bytes) -> bool:
    """Whether the pair's table is suspended at its failure cap in this partition."""
    caps = updates.caps
    if not caps.capped:
        return False
    table, sep, _ = key.partition(SEPARATOR_BYTES)
    return bool(caps.suspended(partition, table.decode() if sep else updates.default_table))
