"""Which PKs are due, per partition, without scanning the tables.

PKs are bucketed by due time (one bucket per ``resolution_ms``) under a
min-heap of bucket ids, so a sweep touches only the buckets that are due: its
cost follows the number of due PKs, not the number of PKs held.

The index is derived state: it lives in memory and is rebuilt from the pair
table when partitions are assigned. Entries are never removed from their bucket
on update (lazy deletion), which keeps ``add`` and ``discard`` O(1) on the hot
path. A PK whose pair settled is remembered as such (``discard``), and its
entries are passed over when their bucket comes due, without the caller reading
the PK's state only to find nothing due: most pending events settle before
their deadline, so most entries end that way. Any other popped PK is re-checked
against its current state by the caller (a PK tracked again to a later time
pops at its earlier entry too, and is found not due yet).

Stale entries wait in their buckets until those come due, and while the inputs
lag none does (the sweep's horizon holds back): a backlog of a million events
would leave a million settled PKs behind. So once more than half of a
partition's entries (plus ``COMPACT_SLACK``) belong to settled PKs, its buckets
are rebuilt without them: the index holds about what is pending, however much
has settled, at an amortised O(1) a call, and a pending PK costs what it did
before settled ones were remembered (its bucket entry).
"""

from __future__ import annotations

import heapq

#: settled PKs a partition may remember beyond half its bucket entries before its buckets are rebuilt
COMPACT_SLACK = 4096


class DeadlineIndex:
    def __init__(self, resolution_ms: int = 1000) -> None:
        self.resolution_ms = resolution_ms
        self._buckets: dict[int, dict[int, list[str]]] = {}
        self._heaps: dict[int, list[int]] = {}
        #: per partition, PKs settled since they were last indexed: their bucket entries are stale
        self._settled: dict[int, set[str]] = {}
        #: per partition, the entries its buckets hold, stale ones included
        self._entries: dict[int, int] = {}

    def add(self, partition: int, pk: str, due_ms: int) -> None:
        settled = self._settled.get(partition)
        if settled:
            settled.discard(pk)  # pending again
        bucket = -(-due_ms // self.resolution_ms)  # ceiling: a bucket is due once all of it is
        buckets = self._buckets.setdefault(partition, {})
        entries = buckets.get(bucket)
        if entries is None:
            buckets[bucket] = [pk]
            heapq.heappush(self._heaps.setdefault(partition, []), bucket)
        else:
            entries.append(pk)
        self._entries[partition] = self._entries.get(partition, 0) + 1

    def discard(self, partition: int, pk: str) -> None:
        """The PK has no deadline left (its pair settled): its bucket entries, if any, are now stale."""
        settled = self._settled.get(partition)
        if settled is None:
            settled = self._settled[partition] = set()
        settled.add(pk)
        if 2 * len(settled) > self._entries.get(partition, 0) + COMPACT_SLACK:
            self._compact(partition)

    def pop_due(self, partition: int, now_ms: int, most: int | None = None) -> list[str]:
        """PKs whose due time is <= now, each once, in due order; at most ``most`` of them, the rest left due for
        the next call. Entries of settled PKs met on the way are dropped and not counted."""
        heap = self._heaps.get(partition)
        if not heap:
            return []
        buckets, settled = self._buckets[partition], self._settled.get(partition, set())
        due: dict[str, None] = {}
        limit = now_ms // self.resolution_ms
        while heap and heap[0] <= limit and (most is None or len(due) < most):
            entries = buckets[heap[0]]
            taken = _take_due(entries, settled, due, most)
            self._entries[partition] -= taken
            if taken < len(entries):  # ``most`` reached inside the bucket: keep the rest for the next call
                del entries[:taken]
                break
            del buckets[heapq.heappop(heap)]
        return list(due)

    def _compact(self, partition: int) -> None:
        """The partition's buckets without the entries of settled PKs, which it then need not remember."""
        settled = self._settled.pop(partition, set())
        buckets = self._buckets.get(partition, {})
        for bucket, entries in list(buckets.items()):
            live = [pk for pk in entries if pk not in settled]
            if live:
                buckets[bucket] = live
            else:
                del buckets[bucket]
        heap = list(buckets)
        heapq.heapify(heap)
        self._heaps[partition] = heap
        self._entries[partition] = sum(map(len, buckets.values()))

    def next_due(self, partition: int) -> int | None:
        """The earliest due time still indexed for the partition (the start of its bucket), None when none is."""
        heap = self._heaps.get(partition)
        return (heap[0] - 1) * self.resolution_ms + 1 if heap else None

    def drop_partition(self, partition: int) -> None:
        self._buckets.pop(partition, None)
        self._heaps.pop(partition, None)
        self._settled.pop(partition, None)
        self._entries.pop(partition, None)

    def partitions(self) -> list[int]:
        return sorted(self._buckets)

    def __len__(self) -> int:
        """Bucket entries held, stale ones included."""
        return sum(len(entries) for buckets in self._buckets.values() for entries in buckets.values())


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
