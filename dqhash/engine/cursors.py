"""A pass over a partition's keys spread over ticks: a bounded read each tick, resumed from the last key read.

No iterator stays open between ticks: a RocksDB iterator pins every memtable written while it lives, so a
pass held open for minutes held the table's recent writes in memory with it.
"""

from __future__ import annotations

from itertools import islice

from dqhash.engine.ports import Scan, Table

#: the cursor of a pass that has not begun
START = None


class Cursors:
    """Per (partition, pass name): where the pass stands, or no pass under way."""

    def __init__(self, pairs: Table, scan: Scan) -> None:
        self.pairs, self.scan = pairs, scan
        self._at: dict[tuple[int, str], bytes | None] = {}

    def active(self, partition: int, name: str) -> bool:
        return (partition, name) in self._at

    def begin(self, partition: int, name: str) -> None:
        self._at[partition, name] = START

    def read(self, partition: int, name: str, limit: int) -> tuple[list[tuple[bytes, bytes]], bool]:
        """Up to ``limit`` (key, value) pairs after the cursor, and whether the pass is now done (then ended)."""
        after = self._at[partition, name]
        items = list(islice(self.scan(self.pairs, partition, after), limit))
        if len(items) < limit:
            del self._at[partition, name]
            return items, True
        self._at[partition, name] = items[-1][0]
        return items, False

    def end(self, partition: int, name: str) -> None:
        self._at.pop((partition, name), None)

    def forget(self, partition: int) -> None:
        for key in [key for key in self._at if key[0] == partition]:
            del self._at[key]
