"""Partitions coming and going: derived state rebuilt from the table, a dead owner's last outputs republished.

The deadline index and the window sets are derived from the pair table on every (re)assignment. A
partition new to this worker also republishes what its previous owner published in its last moments:
that owner may have died after their state reached the changelog and before their audit and metrics
records reached Kafka.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Generic, TypeVar

import orjson

from dqhash.core import pair_state
from dqhash.core.codec import decode_unless_settled
from dqhash.core.deadlines import DeadlineIndex
from dqhash.core.records import Out
from dqhash.core.snapshots import is_snapshot_key
from dqhash.core.window_keys import is_window_key, window_start_of
from dqhash.engine.expiry import Expiry
from dqhash.engine.pair_updates import OUTBOX_MS, PairUpdates
from dqhash.engine.ports import Scan, Table
from dqhash.engine.snapshot_book import SnapshotBook
from dqhash.engine.verified import VerifiedBook
from dqhash.engine.window_book import REPUBLISHED, WindowBook

log = logging.getLogger("dqhash.engine.reconciler")
T = TypeVar("T")


class Takeover:
    def __init__(
        self,
        pairs: Table,
        scan: Scan,
        index: DeadlineIndex,
        windows: WindowBook,
        expiry: Expiry,
        updates: PairUpdates,
        snapshots: SnapshotBook,
        verified: VerifiedBook | None = None,
    ) -> None:
        self.snapshots = snapshots
        self.verified = verified or VerifiedBook("")
        self.pairs, self.scan, self.index, self.windows, self.expiry, self.updates = (
            pairs,
            scan,
            index,
            windows,
            expiry,
            updates,
        )
        #: the partitions of the last rebuild: only partitions new to this worker republish their outbox
        self.owned: set[int] = set()

    def rebuild(self, partitions: Iterable[int]) -> list[Out]:
        """Re-derive the in-memory index and window sets from the table after (re)assignment.

        Returns the outbox verdicts and the recently published windows of partitions this worker did not
        own before, to publish again. A window is sent again as it was (same revision, counts and
        ``emitted_at``), so consumers' upsert by revision is unchanged.
        """
        wanted = set(partitions)
        for partition in set(self.index.partitions()) | self.windows.partitions():
            if partition not in wanted:
                self.forget(partition)
        pending = scanned = 0
        resend: list[Out] = []
        for partition in wanted:
            taken_over = partition not in self.owned
            self.forget(partition)
            for derived in (self.windows.open, self.windows.closed, self.windows.republish):
                derived.setdefault(partition, set())  # owned, whether or not it holds a window yet
            published: LastMoments[Callable[[], list[Out]]] = LastMoments()  # what the previous owner published
            for key, raw in self.scan(self.pairs, partition, None):
                if is_window_key(key):
                    self._rebuilt_window(partition, key, raw, published if taken_over else None)
                elif is_snapshot_key(key):
                    self.snapshots.rebuilt(partition, key, raw)
                else:
                    scanned += 1
                    pending += self._rebuilt_pair(partition, key, raw, published if taken_over else None)
            resend.extend(out for outputs in published.items() for out in outputs())
        self.owned = wanted  # (a revoke does not clear it: Faust revokes everything on every rebalance)
        log.info(
            "rebuilt the deadline index for partitions %s from %d keys: %d pending pairs, %d recent verdict "
            "and window outputs published again",
            sorted(wanted),
            scanned,
            pending,
            len(resend),
        )
        beyond = sorted(p for p in wanted if self.index.cutoff(p) is not None)
        if beyond:
            log.warning(
                "partitions %s hold more pending pairs than DQHASH_PENDING_IN_MEMORY keeps in memory: the earliest "
                "deadlines are held, the rest are read again from the pair table as those are swept "
                '(docs/runbook.md, "More pairs pending than memory keeps")',
                beyond,
            )
        return resend

    def _rebuilt_window(
        self, partition: int, key: bytes, raw: bytes, published: LastMoments[Callable[[], list[Out]]] | None
    ) -> None:
        """A window's record: open or closed, to republish if revised since, or (``published``: a partition taken
        over) among the last moments' outputs: its record may be in the changelog, marked published, and not in
        Kafka."""
        windows = self.windows
        start = window_start_of(key)
        window = orjson.loads(raw)
        windows.caps.counted(partition, window["counts"])
        (windows.closed if window["closed"] else windows.open).setdefault(partition, set()).add(start)
        if window["closed"] and window["revision"] > window.get("published", 0):
            windows.republish.setdefault(partition, set()).add(start)
        elif published is not None and window["closed"] and "published_ms" in window:
            published.add(window["published_ms"], partial(windows.published_again, partition, start, window))

    def _rebuilt_pair(
        self, partition: int, key: bytes, raw: bytes, published: LastMoments[Callable[[], list[Out]]] | None
    ) -> bool:
        """A pair's pending change and deadline, and (``published``: a partition taken over) its verdicts of the
        last moments; whether it has a deadline.

        A settled pair with no verdict of the last moments has nothing to rebuild from, and is not built: what the
        window behind the newest output seen so far excludes, it excludes at the end too.
        """
        state = decode_unless_settled(raw, published.newest - OUTBOX_MS if published is not None else None)
        if state is None:
            return False
        pk = key.decode()
        if published is not None:
            for verdict in state.outbox:
                published.add(verdict.classified_ms, partial(self.updates.verdict_outs, pk, key, verdict, REPUBLISHED))
        self.verified.track(partition, pk, state)
        due = pair_state.pending_deadline(state)
        if due is None:
            return False
        self.updates.track_deadline(partition, pk, state.tracked, due)  # type: ignore[arg-type]
        return True

    def forget(self, partition: int) -> None:
        self.index.drop_partition(partition)
        self.windows.forget(partition)
        self.expiry.forget(partition)
        self.snapshots.forget(partition)
        self.verified.forget(partition)


class LastMoments(Generic[T]):
    """What a partition published in its last OUTBOX_MS, measured from its newest output, not from now.

    A new owner rebuilds a session timeout or more after its predecessor died, so "recent" must be
    judged on the predecessor's clock: what it published before its last commit was delivered.
    Callers add makers of outputs, not outputs: a settled pk keeps its last verdict in its outbox
    until its next write, so most of a partition's outbox is older and is never serialised. Nor is it
    all held at once: what falls out of the window behind the newest output seen so far is dropped as
    the scan goes, so a rebuild holds about OUTBOX_MS of outputs however many keys the partition has.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[int, T]] = []
        self.newest = -1
        self._prune_at = 1_024

    def add(self, at: int, item: T) -> None:
        self.entries.append((at, item))
        if at > self.newest:
            self.newest = at
        if len(self.entries) >= self._prune_at:
            self.entries = [entry for entry in self.entries if entry[0] >= self.newest - OUTBOX_MS]
            self._prune_at = max(1_024, 2 * len(self.entries))

    def items(self) -> list[T]:
        """Oldest first, the ones within OUTBOX_MS of the newest."""
        since = self.newest - OUTBOX_MS
        return [item for at, item in sorted(self.entries, key=lambda entry: entry[0]) if at >= since]


def last_moments(published: list[tuple[int, T]]) -> list[T]:
    """``LastMoments`` of a list already gathered."""
    moments: LastMoments[T] = LastMoments()
    for at, item in published:
        moments.add(at, item)
    return moments.items()
