"""One partition's pending changes per table, and the oldest of them, in memory bounded however many wait.

A change read and not yet given a verdict holds its table's verified-through time back (``core.progress``):
what a partition needs is the commit time of each table's oldest pending change. Each pending pair is kept
(pair key → commit time, and a heap of them, lazily pruned) so that a pair that settles or moves on leaves
without a trace, whatever order the verdicts come in.

When the cloud side is down for hours every change waits, and a pair each would grow with the keys. Past
``capacity`` pairs, the table holding the most keeps its oldest and forgets the rest, remembering the oldest
commit time it forgot (its floor): a forgotten change is no older than the floor, so the table's oldest
pending time is the older of the floor and what is kept. It may then read older than the truth, never newer:
a verified-through time held back, never one too new. A pair whose change is no older than the floor is not
kept again. The caller builds a fresh set from a scan of the pair table and every change meanwhile (as the
deadline index is refilled) to learn the exact times again.
"""

from __future__ import annotations

import heapq


class PendingChanges:
    def __init__(self, capacity: int | None = None) -> None:
        #: pending pairs kept at most (None: unbounded); half of them are kept when it is passed
        self.capacity = capacity
        self.tables: dict[str, _TablePending] = {}
        #: pending pairs kept, over every table
        self.count = 0

    def track(self, table: str, key: str, event_ts: int | None) -> None:
        """The pair's pending change is now committed at ``event_ts`` (None: it has none)."""
        pending = self.tables.get(table)
        if pending is None:
            if event_ts is None:
                return
            pending = self.tables[table] = _TablePending()
        entries = pending.entries
        if event_ts is None or (pending.floor is not None and event_ts >= pending.floor):
            if key in entries:  # settled, or its change is among the forgotten now
                del entries[key]
                self.count -= 1
            return
        known = entries.get(key)
        if known == event_ts:
            return
        if known is None:
            self.count += 1
        entries[key] = event_ts
        heap = pending.heap
        heapq.heappush(heap, (event_ts, key))
        if len(heap) > 2 * len(entries) + 64:  # mostly stale entries: rebuilt from the live ones
            pending.reheap()
        if self.capacity is not None and self.count > self.capacity:
            self._shed(max(1, self.capacity // 2))

    def oldest(self, table: str) -> int | None:
        """The commit time of the table's oldest pending change, or older (the floor); None when none waits."""
        pending = self.tables.get(table)
        if pending is None:
            return None
        entries, heap = pending.entries, pending.heap
        while heap and entries.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        kept = heap[0][0] if heap else None
        if pending.floor is None:
            return kept
        return pending.floor if kept is None else min(kept, pending.floor)

    def kept(self, table: str) -> int:
        """Pending pairs kept for the table (all of them unless ``forgot``)."""
        pending = self.tables.get(table)
        return len(pending.entries) if pending is not None else 0

    def forgot(self, table: str) -> bool:
        pending = self.tables.get(table)
        return pending is not None and pending.floor is not None

    def forgot_any(self) -> bool:
        return any(pending.floor is not None for pending in self.tables.values())

    def _shed(self, keep: int) -> None:
        """Forget the newest changes of the tables holding the most until ``keep`` pairs are left."""
        for pending in sorted(self.tables.values(), key=lambda p: len(p.entries), reverse=True):
            if self.count <= keep:
                return
            ordered = sorted(pending.entries.items(), key=lambda item: (item[1], item[0]))
            kept = max(0, len(ordered) - (self.count - keep))
            forgotten = ordered[kept:]
            if not forgotten:
                continue
            oldest_forgotten = forgotten[0][1]
            pending.floor = oldest_forgotten if pending.floor is None else min(pending.floor, oldest_forgotten)
            pending.entries = dict(ordered[:kept])
            self.count -= len(forgotten)
            pending.reheap()


class _TablePending:
    __slots__ = ("entries", "heap", "floor")

    def __init__(self) -> None:
        #: pair key → commit time of its pending change
        self.entries: dict[str, int] = {}
        #: (commit time, pair key), stale ones included until they surface
        self.heap: list[tuple[int, str]] = []
        #: no forgotten change is older than this; None: none was forgotten
        self.floor: int | None = None

    def reheap(self) -> None:
        self.heap = [(ts, key) for key, ts in self.entries.items()]
        heapq.heapify(self.heap)
