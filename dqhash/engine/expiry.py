"""Settled state expires: a bounded scan per tick drops pairs settled longer than the retention ago.

A pass over a partition is spread over ticks (``EXPIRY_KEYS_PER_S`` keys a second, at most
``EXPIRY_SCAN_BATCH`` a tick) and starts again at most every ``EXPIRY_PASS_INTERVAL_MS``, so a tick's work stays
bounded however many PKs a partition holds, and the scan's cost follows time, not the tick: a shorter
DQHASH_TICK_SECONDS (for latency) does not make it read more.
"""

from __future__ import annotations

from dqhash.core import pair_state
from dqhash.core.codec import settled_since
from dqhash.core.pair_state import Rules
from dqhash.core.snapshots import SNAPSHOT_PREFIX
from dqhash.engine.cursors import Cursors
from dqhash.engine.ports import MetricsSink, Scan, Table
from dqhash.engine.staged import StagedTable

#: Keys read per partition and tick by the expiry scan, at most (bounded work per tick).
EXPIRY_SCAN_BATCH = 1000
#: Keys read per partition and second by the expiry scan.
EXPIRY_KEYS_PER_S = 1000
#: A new expiry pass over a partition starts at most this often (or every retention/4 if shorter).
EXPIRY_PASS_INTERVAL_MS = 60_000


class Expiry:
    def __init__(self, pairs: Table, scan: Scan, rules: Rules, metrics: MetricsSink) -> None:
        self.rules, self.metrics = rules, metrics
        self._passes = Cursors(pairs, scan)
        self._next_pass: dict[int, int] = {}
        self._read_at: dict[int, int] = {}
        self._interval_ms = max(1, min(EXPIRY_PASS_INTERVAL_MS, rules.retention_ms // 4))

    def sweep(self, staged: StagedTable, partition: int, now: int) -> None:
        if not self._passes.active(partition, "expiry"):
            if now < self._next_pass.get(partition, 0):
                return
            self._next_pass[partition] = now + self._interval_ms
            self._passes.begin(partition, "expiry")
        expired = []
        retention = self.rules.retention_ms
        items, _done = self._passes.read(partition, "expiry", self._budget(partition, now))
        # a done pass begins after the interval
        for key, raw in items:
            if key[:1] < SNAPSHOT_PREFIX:  # a pair (window and snapshot records sort after every PK)
                if staged.is_staged(key):  # the batch's own state, if it changed this key
                    state = staged.state(partition, key)
                    at = pair_state.expires_at(state, self.rules) if state is not None else None
                else:
                    since = settled_since(raw)
                    at = since + retention if since is not None else None
                if at is not None and at <= now:
                    expired.append(key)
        for key in expired:
            staged.put_state(partition, key, None)
        self.metrics.expired(len(expired))

    def _budget(self, partition: int, now: int) -> int:
        """Keys to read this tick: EXPIRY_KEYS_PER_S for the time since the partition's last read."""
        last = self._read_at.get(partition)
        self._read_at[partition] = now
        if last is None:
            return EXPIRY_SCAN_BATCH
        return max(1, min(EXPIRY_SCAN_BATCH, (now - last) * EXPIRY_KEYS_PER_S // 1000))

    def forget(self, partition: int) -> None:
        self._passes.forget(partition)
        self._read_at.pop(partition, None)
