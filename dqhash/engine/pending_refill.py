"""Pending pairs that memory let go of, found again: a pass over a partition's pair table, spread over ticks.

The deadline index and the verified-through book keep a bounded number of pending pairs in memory
(``core.deadlines``, ``core.pending_changes``, ``DQHASH_PENDING_IN_MEMORY``); past it, the latest wait in the
pair table, and the sweep goes no further than the first of them. When few of those kept are left, either asks
for a refill: a pass over the partition's pairs (``REFILL_SCAN_BATCH`` keys a tick) builds both afresh from
every pending pair it reads and every change meanwhile, then replaces them. A pair written in the tick's own
batch is read from the batch, not from the table behind it.
"""

from __future__ import annotations

import logging

from dqhash.core import pair_state
from dqhash.core.codec import decode_unless_settled
from dqhash.core.deadlines import DeadlineIndex
from dqhash.core.snapshots import SNAPSHOT_PREFIX
from dqhash.engine.cursors import Cursors
from dqhash.engine.ports import Scan, Table
from dqhash.engine.staged import StagedTable
from dqhash.engine.verified import VerifiedBook

log = logging.getLogger("dqhash.engine.reconciler")

#: keys read per partition and tick by a refill
REFILL_SCAN_BATCH = 10_000
_PASS = "refill"


class PendingRefill:
    def __init__(self, pairs: Table, scan: Scan, index: DeadlineIndex, verified: VerifiedBook) -> None:
        self.index, self.verified = index, verified
        self._passes = Cursors(pairs, scan)
        #: per partition, the pending pairs the pass under way has read
        self._found: dict[int, int] = {}

    def sweep(self, staged: StagedTable, partition: int) -> None:
        """Begin a pass if one is wanted, or go on with the one under way."""
        refilling = self.index.refilling(partition) and self.verified.refilling(partition)
        if self._passes.active(partition, _PASS) and not refilling:
            self._passes.end(partition, _PASS)  # the partition was rebuilt meanwhile: its refill went with it
        if not self._passes.active(partition, _PASS):
            if not (self.index.refill_wanted(partition) or self.verified.refill_wanted(partition)):
                return
            self._begin(partition)
        items, done = self._passes.read(partition, _PASS, REFILL_SCAN_BATCH)
        for key, raw in items:
            if key[:1] >= SNAPSHOT_PREFIX:  # window and snapshot records sort after every PK
                continue
            state = staged.state(partition, key) if staged.is_staged(key) else decode_unless_settled(raw, None)
            if state is not None:
                self._found[partition] += 1
                pk = key.decode()
                due = pair_state.pending_deadline(state)
                if due is not None:
                    self.index.refill(partition, pk, due)
                self.verified.refill(partition, pk, state)
        if done:
            self._end(partition)

    def _end(self, partition: int) -> None:
        self.index.end_refill(partition)
        self.verified.end_refill(partition)
        found = self._found.pop(partition)
        if self.index.cutoff(partition) is None:
            log.info(
                "partition %d: %d pending pairs read again from the pair table, all held in memory", partition, found
            )
        else:
            log.warning(
                "partition %d: %d pending pairs read again from the pair table; the earliest %d are held in memory, "
                "the rest wait for the next pass, which reads the partition's pairs again. If this repeats, raise "
                "DQHASH_PENDING_IN_MEMORY (about 200 bytes a pending pair, over all partitions) to hold them all",
                partition,
                found,
                self.index.held(partition),
            )

    def _begin(self, partition: int) -> None:
        self._passes.begin(partition, _PASS)
        self.index.begin_refill(partition)
        self.verified.begin_refill(partition)
        self._found[partition] = 0
        log.warning(
            "partition %d: more pairs were pending than DQHASH_PENDING_IN_MEMORY keeps in memory; reading the "
            "rest again from the pair table, %d keys a tick",
            partition,
            REFILL_SCAN_BATCH,
        )

    def forget(self, partition: int) -> None:
        self._passes.forget(partition)
        self._found.pop(partition, None)
