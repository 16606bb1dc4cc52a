"""Which PKs are due, per partition, without scanning the tables.

PKs are bucketed by due time (one bucket per ``resolution_ms``) under a
min-heap of bucket ids, so a sweep touches only the buckets that are due: its
cost follows the number of due PKs, not the number of PKs held.

The index is derived state: it lives in memory and is rebuilt from the pair
table when partitions are assigned. Entries are never removed from their bucket
on update (lazy deletion), which keeps ``add`` and ``discard`` O(1) on the hot
path. Beside the buckets the index keeps each PK's latest due time, and forgets
it once the caller says the PK has no deadline left (``discard``: its pair
settled). A popped entry that is no longer the PK's latest is skipped there,
without the caller reading the PK's state only to find nothing due: most
pending events settle before their deadline, so most entries end that way. A
PK the index still has is re-checked against its current state by the caller.

Stale entries wait in their buckets until those come due, and while the inputs
lag none does (the sweep's horizon holds back): a backlog of a million events
would leave a million settled PKs behind. So when an entry is added to a
partition whose buckets hold more than twice its live PKs (plus
``COMPACT_SLACK``), they are rebuilt from the live ones: the index holds at
most about twice the most PKs pending at once, however many have settled, at
an amortised O(1) an entry.
"""

from __future__ import annotations

import heapq

#: stale bucket entries a partition may hold beyond its live PKs before its buckets are rebuilt
COMPACT_SLACK = 4096


class DeadlineIndex:
    def __init__(self, resolution_ms: int = 1000) -> None:
        self.resolution_ms = resolution_ms
        self._buckets: dict[int, dict[int, list[str]]] = {}
        self._heaps: dict[int, list[int]] = {}
        #: per partition, each PK's latest due time: the entry that counts (an older one in its bucket is stale)
        self._latest: dict[int, dict[str, int]] = {}
        #: per partition, the entries its buckets hold, stale ones included
        self._entries: dict[int, int] = {}

    def add(self, partition: int, pk: str, due_ms: int) -> None:
        latest = self._latest.get(partition)
        if latest is None:
            latest = self._latest[partition] = {}
        latest[pk] = due_ms
        bucket = -(-due_ms // self.resolution_ms)  # ceiling: a bucket is due once all of it is
        buckets = self._buckets.setdefault(partition, {})
        entries = buckets.get(bucket)
        if entries is None:
            buckets[bucket] = [pk]
            heapq.heappush(self._heaps.setdefault(partition, []), bucket)
        else:
            entries.append(pk)
        held = self._entries[partition] = self._entries.get(partition, 0) + 1
        if held > 2 * len(latest) + COMPACT_SLACK:
            self._compact(partition)

    def discard(self, partition: int, pk: str) -> None:
        """The PK has no deadline left (its pair settled, or was dropped): its bucket entries are now stale."""
        latest = self._latest.get(partition)
        if latest is not None:
            latest.pop(pk, None)

    def pop_due(self, partition: int, now_ms: int, most: int | None = None) -> list[str]:
        """PKs whose latest due time is <= now, each once, in due order; at most ``most`` of them, the rest left
        due for the next call. Stale entries met on the way are dropped and not counted."""
        heap = self._heaps.get(partition)
        if not heap:
            return []
        buckets, latest = self._buckets[partition], self._latest[partition]
        due: list[str] = []
        limit = now_ms // self.resolution_ms
        while heap and heap[0] <= limit and (most is None or len(due) < most):
            entries = buckets[heap[0]]
            taken = _take_due(entries, latest, now_ms, due, most)
            self._entries[partition] -= taken
            if taken < len(entries):  # ``most`` reached inside the bucket: keep the rest for the next call
                del entries[:taken]
                break
            del buckets[heapq.heappop(heap)]
        return due

    def _compact(self, partition: int) -> None:
        """The partition's buckets rebuilt from its live PKs alone (in the order they were first indexed)."""
        buckets: dict[int, list[str]] = {}
        resolution = self.resolution_ms
        for pk, due_ms in self._latest[partition].items():
            bucket = -(-due_ms // resolution)
            entries = buckets.get(bucket)
            if entries is None:
                buckets[bucket] = [pk]
            else:
                entries.append(pk)
        heap = list(buckets)
        heapq.heapify(heap)
        self._buckets[partition], self._heaps[partition] = buckets, heap
        self._entries[partition] = len(self._latest[partition])

    def next_due(self, partition: int) -> int | None:
        """The earliest due time still indexed for the partition (the start of its bucket), None when none is."""
        heap = self._heaps.get(partition)
        return (heap[0] - 1) * self.resolution_ms + 1 if heap else None

    def drop_partition(self, partition: int) -> None:
        self._buckets.pop(partition, None)
        self._heaps.pop(partition, None)
        self._latest.pop(partition, None)
        self._entries.pop(partition, None)

    def partitions(self) -> list[int]:
        return sorted(self._buckets)

    def live(self) -> int:
        """PKs with a deadline still indexed (each once, stale bucket entries not counted)."""
        return sum(len(latest) for latest in self._latest.values())

    def __len__(self) -> int:
        return sum(len(entries) for buckets in self._buckets.values() for entries in buckets.values())


def _take_due(entries: list[str], latest: dict[str, int], now_ms: int, due: list[str], most: int | None) -> int:
    """Move the bucket's live due PKs into ``due`` (forgetting their due time: the caller now holds them), until
    ``most``; return how many entries were looked at. An entry is live when it is its PK's latest due time and
    that is due: a PK re-tracked to a later time waits in its later bucket, one discarded waits nowhere."""
    looked = 0
    for pk in entries:
        if most is not None and len(due) >= most:
            break
        looked += 1
        due_ms = latest.get(pk)
        if due_ms is not None and due_ms <= now_ms:
            del latest[pk]
            due.append(pk)
    return looked
