"""What the engine needs from the world, as small ports: a pair store, a metrics sink, a clock.

The worker plugs in Faust's RocksDB tables and DogStatsD; a test plugs in a dict and a recorder. Nothing
here imports a framework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from contextlib import AbstractContextManager
from typing import Protocol

from dqhash.core.records import Out

#: The pair table: bytes → bytes (dqhash encodes values itself).
Table = MutableMapping[bytes, bytes]
#: ``(partition, key) → value``: a point read of one partition's store.
PointRead = Callable[[int, bytes], "bytes | None"]
#: ``(partition, [(key, value or None to delete), ...]) → records to produce for them`` (a changelog), if any.
Writer = Callable[[int, "list[tuple[bytes, bytes | None]]"], "list[Out]"]
#: ``(table, partition, after) → (key, value)`` pairs of one partition in key order, from a snapshot, the keys
#: after ``after`` (all when None). Work spread over ticks resumes from the last key read, never from an
#: iterator kept open: a RocksDB iterator pins every memtable written while it lives.
Scan = Callable[[Table, int, "bytes | None"], Iterator[tuple[bytes, bytes]]]
#: Milliseconds since the epoch.
Clock = Callable[[], int]
#: ``(partition, now) → the time up to which deadlines may be swept`` (``now`` unless the inputs lag).
Horizon = Callable[[int, int], int]


class MetricsSink(Protocol):
    """The metrics the engine reports (DogStatsD in a worker: ``dqhash.ops.dogstatsd.Metrics``)."""

    def batch(self) -> AbstractContextManager[None]: ...

    def classified(self, status: str, late: bool, time_to_classify_ms: int, table: str = ...) -> None: ...

    def repair_requested(self, status: str, table: str = ...) -> None: ...

    def withdrawn(self, counted: str, table: str = ...) -> None: ...

    def duplicate(self, topic: str) -> None: ...

    def stale_cloud(self) -> None: ...

    def reverified(self) -> None: ...

    def column_mismatch(self, columns: tuple[str, ...], table: str = ...) -> None: ...

    def dead_lettered(self, reason: str, topic: str) -> None: ...

    def expired(self, n: int) -> None: ...

    def window_closed(self, partition: int, compared: int, match_rate: float | None) -> None: ...

    def verified_age(self, table: str, seconds: float) -> None: ...
