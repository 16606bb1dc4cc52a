"""What one input record does to its partition: window counts and pair writes, applied together.

Window counts are written before pair state, to the same table (so the same changelog partition): if a
pair's new state survived a crash, so did the counts it caused (``WindowBook.fold``).
"""

from __future__ import annotations

from typing import Any

from dqhash.core.pair_state import PairState


class Effects:
    __slots__ = ("partition", "source", "offset", "origin", "counts", "writes", "snapshot_events")

    def __init__(self, partition: int, source: int, offset: int, origin: str | None = None) -> None:
        self.partition, self.source, self.offset, self.origin = partition, source, offset, origin
        self.counts: dict[int, dict[str, int]] = {}
        #: (key, pk, new state): the pk is the key's text, kept so that what indexes the pair shares one string
        self.writes: list[tuple[bytes, str, PairState]] = []
        #: (kind, snapshot id, what, detail) for ``SnapshotBook.fold``: rows joining a side, verdicts, end markers
        self.snapshot_events: list[tuple[str, str, str, Any]] = []

    def count(self, window_start: int, key: str, n: int = 1) -> None:
        counts = self.counts.get(window_start)
        if counts is None:
            counts = self.counts[window_start] = {}
        counts[key] = counts.get(key, 0) + n
