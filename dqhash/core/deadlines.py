"""Which PKs are due, per partition, without scanning the tables.

PKs are bucketed by due time (one bucket per ``resolution_ms``) under a
min-heap of bucket ids, so a sweep touches only the buckets that are due: its
cost follows the number of due PKs, not the number of PKs held.

The index is derived state: it lives in memory and is rebuilt from the pair
table when partitions are assigned. Entries are never removed on update; a
popped PK is re-checked against its current state by the caller (lazy
deletion), which keeps ``add`` O(1) on the hot path.
"""

from __future__ import annotations

import heapq


class DeadlineIndex:
    def __init__(self, resolution_ms: int = 1000) -> None:
        self.resolution_ms = resolution_ms
        self._buckets: dict[int, dict[int, list[str]]] = {}
        self._heaps: dict[int, list[int]] = {}

    def add(self, partition: int, pk: str, due_ms: int) -> None:
        bucket = -(-due_ms // self.resolution_ms)  # ceiling: a bucket is due once all of it is
        buckets = self._buckets.setdefault(partition, {})
        entries = buckets.get(bucket)
        if entries is None:
            buckets[bucket] = [pk]
            heapq.heappush(self._heaps.setdefault(partition, []), bucket)
        else:
            entries.append(pk)

    def pop_due(self, partition: int, now_ms: int, most: int | None = None) -> list[str]:
        """PKs whose due time is <= now, each once, in due order; at most ``most`` of them (about: a bucket is taken
        whole), the rest left due for the next call."""
        heap = self._heaps.get(partition)
        if not heap:
            return []
        buckets = self._buckets[partition]
        due: dict[str, None] = {}
        limit = now_ms // self.resolution_ms
        while heap and heap[0] <= limit and (most is None or len(due) < most):
            bucket = heap[0]
            entries = buckets[bucket]
            if most is not None and len(entries) > most - len(due):  # take part of the bucket, keep the rest
                taken = most - len(due)
                for pk in entries[:taken]:
                    due[pk] = None
                del entries[:taken]
                break
            heapq.heappop(heap)
            for pk in buckets.pop(bucket):
                due[pk] = None
        return list(due)

    def next_due(self, partition: int) -> int | None:
        """The earliest due time still indexed for the partition (the start of its bucket), None when none is."""
        heap = self._heaps.get(partition)
        return (heap[0] - 1) * self.resolution_ms + 1 if heap else None

    def drop_partition(self, partition: int) -> None:
        self._buckets.pop(partition, None)
        self._heaps.pop(partition, None)

    def partitions(self) -> list[int]:
        return sorted(self._buckets)

    def __len__(self) -> int:
        return sum(len(entries) for buckets in self._buckets.values() for entries in buckets.values())
