"""Which PKs are due, per partition, without scanning the tables, in memory bounded however many are pending.

PKs are bucketed by due time (one bucket per ``resolution_ms``) under a min-heap of bucket ids, so a sweep
touches only the buckets that are due: its cost follows the number of due PKs, not the number of PKs held.

The index is derived state: it lives in memory and is rebuilt from the pair table when partitions are
assigned. Entries are never removed from their bucket on update (lazy deletion), which keeps ``add`` and
``discard`` O(1) on the hot path. A PK whose pair settled is remembered as such (``discard``), and its entries
are passed over when their bucket comes due, without the caller reading the PK's state only to find nothing
due: most pending events settle before their deadline, so most entries end that way. Any other popped PK is
re-checked against its current state by the caller (a PK tracked again to a later time pops at its earlier
entry too, and is found not due yet).

Stale entries wait in their buckets until those come due, and while the inputs lag none does (the sweep's
horizon holds back): a backlog of a million events would leave a million settled PKs behind. So once more
than half of a partition's entries (plus ``COMPACT_SLACK``) belong to settled PKs, its buckets are rebuilt
without them, at an amortised O(1) a call.

What is pending is bounded too (``capacity`` entries a partition): when the cloud side is down for hours,
every change waits, and an index of them all would grow with the keys. Past the capacity a partition keeps
its earliest deadlines and forgets the rest, from a cut-off on (due bucket, PK): a forgotten one stays in the
pair table, due no earlier than the cut-off (``next_due`` says so, so nothing after it is taken for swept).
When few indexed entries are left, ``refill_wanted`` asks the caller for a scan of the partition's pairs
(``begin_refill``, ``refill``, ``end_refill``): a second index is built from the pending pairs the scan finds
and from every change meanwhile, and then replaces the first.
"""

from __future__ import annotations

import heapq

#: settled PKs a partition may remember beyond half its bucket entries before its buckets are rebuilt
COMPACT_SLACK = 4096
#: a PK sorts after every other at its due bucket's cut-off (``(bucket, LAST_PK)``: the whole bucket is kept)
LAST_PK = "\U0010ffff"


class DeadlineIndex:
    def __init__(self, resolution_ms: int = 1000, capacity: int | None = None) -> None:
        self.resolution_ms = resolution_ms
        #: bucket entries a partition holds at most (None: unbounded); half of them are kept when it is passed
        self.capacity = capacity
        self._parts: dict[int, _Deadlines] = {}
        #: per partition, the index a refill scan is building (it replaces the partition's when the scan ends)
        self._refills: dict[int, _Deadlines] = {}

    def _part(self, partition: int) -> _Deadlines:
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = _Deadlines(self.resolution_ms, self.capacity)
        return part

    def add(self, partition: int, pk: str, due_ms: int) -> None:
        self._part(partition).add(pk, due_ms)
        if self._refills:
            refill = self._refills.get(partition)
            if refill is not None:
                refill.add(pk, due_ms)

    def discard(self, partition: int, pk: str) -> None:
        """The PK has no deadline left (its pair settled): its bucket entries, if any, are now stale."""
        self._part(partition).discard(pk)
        if self._refills:
            refill = self._refills.get(partition)
            if refill is not None:
                refill.discard(pk)

    def pop_due(self, partition: int, now_ms: int, most: int | None = None) -> list[str]:
        """PKs whose due time is <= now, each once, in due order; at most ``most`` of them, the rest left due for
        the next call. Entries of settled PKs met on the way are dropped and not counted. A PK past the cut-off
        is not among them, however due: it waits for a refill."""
        part = self._parts.get(partition)
        return part.pop_due(now_ms, most) if part is not None else []

    def next_due(self, partition: int) -> int | None:
        """The earliest due time that may still be unswept on the partition (the start of its bucket; the
        cut-off's, when pending PKs past it wait in the pair table), None when none is."""
        part = self._parts.get(partition)
        return part.next_due() if part is not None else None

    # --- refills -----------------------------------------------------------------------

    def refill_wanted(self, partition: int) -> bool:
        """PKs were forgotten past the cut-off, and few indexed entries are left before it: time to scan."""
        part = self._parts.get(partition)
        return (
            part is not None
            and part.cutoff is not None
            and partition not in self._refills
            and part.entries <= (self.capacity or 0) // 4
        )

    def begin_refill(self, partition: int) -> None:
        self._refills[partition] = _Deadlines(self.resolution_ms, self.capacity)

    def refill(self, partition: int, pk: str, due_ms: int) -> None:
        """A pending PK the refill's scan read (its state as it is now)."""
        self._refills[partition].add(pk, due_ms)

    def end_refill(self, partition: int) -> None:
        """The scan is done: the refill's index, built from every pending pair, replaces the partition's."""
        refill = self._refills.pop(partition, None)
        if refill is not None:
            self._parts[partition] = refill

    def refilling(self, partition: int) -> bool:
        return partition in self._refills

    def drop_partition(self, partition: int) -> None:
        self._parts.pop(partition, None)
        self._refills.pop(partition, None)

    def partitions(self) -> list[int]:
        return sorted(self._parts)

    def held(self, partition: int) -> int:
        """Bucket entries the partition's index holds, stale ones included."""
        part = self._parts.get(partition)
        return part.entries if part is not None else 0

    def cutoff(self, partition: int) -> tuple[int, str] | None:
        """(due bucket, PK) after which the partition's pending PKs are not indexed; None when all are."""
        part = self._parts.get(partition)
        return part.cutoff if part is not None else None

    def __len__(self) -> int:
        """Bucket entries held, stale ones included (refills' too)."""
        return sum(part.entries for part in (*self._parts.values(), *self._refills.values()))


class _Deadlines:
    """One partition's buckets."""

    __slots__ = ("resolution_ms", "capacity", "buckets", "heap", "settled", "entries", "cutoff")

    def __init__(self, resolution_ms: int, capacity: int | None) -> None:
        self.resolution_ms, self.capacity = resolution_ms, capacity
        self.buckets: dict[int, list[str]] = {}
        self.heap: list[int] = []
        #: PKs settled since they were last indexed: their bucket entries are stale
        self.settled: set[str] = set()
        #: the entries the buckets hold, stale ones included
        self.entries = 0
        #: (bucket, PK) after which pending PKs were forgotten (``shed``); None: every pending PK is indexed
        self.cutoff: tuple[int, str] | None = None

    def add(self, pk: str, due_ms: int) -> None:
        if self.settled:
            self.settled.discard(pk)  # pending again
        bucket = -(-due_ms // self.resolution_ms)  # ceiling: a bucket is due once all of it is
        if self.cutoff is not None and (bucket, pk) > self.cutoff:
            return  # past the cut-off: it waits in the pair table for a refill
        entries = self.buckets.get(bucket)
        if entries is None:
            self.buckets[bucket] = [pk]
            heapq.heappush(self.heap, bucket)
        else:
            entries.append(pk)
        self.entries += 1
        if self.capacity is not None and self.entries > self.capacity:
            self.shed()

    def discard(self, pk: str) -> None:
        self.settled.add(pk)
        if 2 * len(self.settled) > self.entries + COMPACT_SLACK:
            self.compact()

    def pop_due(self, now_ms: int, most: int | None) -> list[str]:
        heap, buckets, settled = self.heap, self.buckets, self.settled
        due: dict[str, None] = {}
        limit = now_ms // self.resolution_ms
        while heap and heap[0] <= limit and (most is None or len(due) < most):
            entries = buckets[heap[0]]
            taken = _take_due(entries, settled, due, most)
            self.entries -= taken
            if taken < len(entries):  # ``most`` reached inside the bucket: keep the rest for the next call
                del entries[:taken]
                break
            del buckets[heapq.heappop(heap)]
        return list(due)

    def next_due(self) -> int | None:
        first = self.heap[0] if self.heap else None
        if self.cutoff is not None:
            first = self.cutoff[0] if first is None else min(first, self.cutoff[0])
        return (first - 1) * self.resolution_ms + 1 if first is not None else None

    def compact(self) -> None:
        """The buckets without the entries of settled PKs, which need not be remembered then."""
        settled, self.settled = self.settled, set()
        for bucket, entries in list(self.buckets.items()):
            live = [pk for pk in entries if pk not in settled]
            if live:
                self.buckets[bucket] = live
            else:
                del self.buckets[bucket]
        self._reindex()

    def shed(self) -> None:
        """Over capacity with stale entries gone: keep the earliest half, forget the rest past a cut-off."""
        self.compact()
        assert self.capacity is not None
        if self.entries <= self.capacity:
            return
        keep, kept = max(1, self.capacity // 2), 0
        last: tuple[int, str] | None = None
        for bucket in sorted(self.buckets):
            entries = self.buckets[bucket]
            if kept >= keep:
                del self.buckets[bucket]
            elif kept + len(entries) <= keep:
                kept += len(entries)
                last = (bucket, LAST_PK)
            else:
                ordered = sorted(set(entries))[: keep - kept]
                self.buckets[bucket] = ordered
                kept += len(ordered)
                last = (bucket, ordered[-1])
        assert last is not None
        self.cutoff = last if self.cutoff is None else min(self.cutoff, last)
        self._reindex()

    def _reindex(self) -> None:
        self.heap = list(self.buckets)
        heapq.heapify(self.heap)
        self.entries = sum(map(len, self.buckets.values()))


def _take_due(entries: list[str], settled: set[str], due: dict[str, None], most: int | None) -> int:
    """Move the bucket's entries of PKs still pending into ``due``, until ``most``; return how many entries were
    looked at."""
    looked = 0
    for pk in entries:
        if most is not None and len(due) >= most:
            break
        looked += 1
        if pk not in settled:
            due[pk] = None
    return looked
