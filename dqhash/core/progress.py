"""How far each table's changes are verified: progress marks on Topic-1, and "verified through".

**Verified through** (per table): the newest source commit time T such that every change of the table committed
before T has a final verdict (docs/debezium.md, "Verified through"). Two things make it:

- **Progress marks.** A producer that reads a table's changes in commit order (the Debezium reader: one change
  topic partition is one ordered stream) writes to every Topic-1 partition, now and then, a record
  ``{"progress": [{"table", "source", "sources", "through"}, ...]}``: every change of ``table`` it read from
  ``source`` (one of ``sources`` source partitions) committed at or before ``through`` was sent before this record.
  Changes keyed by their pair key land in their partition without a detour, so once a partition reads the mark,
  it has read every such change it will get. A table's mark counts on a partition once every one of its
  ``sources`` has spoken there; its time is the oldest of theirs.
- **Pending changes.** Changes read and not yet given a verdict hold it back: a partition's verified-through
  time for a table is its mark, or the commit time of its oldest pending change of that table if that is older.

The table's time is the oldest of its partitions'; unknown (None) until every partition has one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

#: the field of a Topic-1 record that makes it a progress mark
PROGRESS_FIELD = "progress"


class Progress(NamedTuple):
    table: str
    source: str  # a source partition, e.g. "dbserver1.inventory.customers:0"
    sources: int  # how many source partitions feed the table
    through: int  # commit time (epoch ms): every change at or before it was sent before the mark


def progress_record(marks: Iterable[Progress]) -> dict[str, Any]:
    return {PROGRESS_FIELD: [m._asdict() for m in marks]}


def parse_progress(entries: Any) -> list[Progress] | str:
    """The marks of a progress record, or what is wrong with it."""
    if not isinstance(entries, list) or not entries:
        return "progress must be a non-empty list of {table, source, sources, through}"
    marks = []
    for entry in entries:
        if not isinstance(entry, dict):
            return "each progress entry must be an object {table, source, sources, through}"
        table, source, sources, through = (entry.get(f) for f in Progress._fields)
        if not isinstance(table, str) or not table or not isinstance(source, str) or not source:
            return "a progress entry needs a table and a source (non-empty strings)"
        if type(sources) is not int or sources < 1 or type(through) is not int or through < 0:
            return "a progress entry's sources must be a positive integer and through epoch milliseconds"
        marks.append(Progress(table, source, sources, through))
    return marks


def mark_through(sources: Mapping[str, tuple[int, int]]) -> int | None:
    """A table's mark on one partition from its sources' (sources, through): None until every source has spoken."""
    if not sources:
        return None
    expected = max(count for count, _ in sources.values())
    if len(sources) < expected:
        return None
    return min(through for _, through in sources.values())


def partition_through(mark: int | None, oldest_pending: int | None) -> int | None:
    """One partition's verified-through time for a table: its mark, held back by its oldest pending change."""
    if mark is None:
        return None
    return mark if oldest_pending is None else min(mark, oldest_pending)


def table_through(by_partition: Mapping[int, int | None], partitions: int) -> int | None:
    """A table's verified-through time: the oldest of every partition's; None until each has one."""
    times = [by_partition.get(p) for p in range(partitions)]
    if any(t is None for t in times):
        return None
    return min(times)  # type: ignore[type-var]
