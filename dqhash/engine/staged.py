"""One batch's view of the pair table: reads go through, writes are held and made once per key.

A changelog-backed table pays a changelog record, a RocksDB write and an
acknowledgement for every assignment, so a key changed by several records of a
batch (a window's counts above all) is written once, at :meth:`StagedTable.flush`.
Values are held decoded, so a key read twice in a batch is decoded once.

Per partition, window records are written before pair records: the same order
``Reconciler`` relies on record by record (if a pair's new state survived a
crash, so did the counts it caused), now for the batch as a whole.

Writing is left to a :data:`Writer`: a plain mapping is written key by key
(:func:`mapping_writer`); the Faust table's writer (``dqhash.internals.store.batch_writer``)
writes its store in one RocksDB batch and returns the changelog records to produce.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import orjson

from dqhash.core.codec import decode_state, encode_state
from dqhash.core.pair_state import PairState
from dqhash.core.records import Out
from dqhash.engine.ports import PointRead, Writer

_ABSENT = object()


def mapping_writer(table: MutableMapping[bytes, bytes]) -> Writer:
    def write(partition: int, items: list[tuple[bytes, bytes | None]]) -> list[Out]:
        for key, value in items:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        return []

    return write


class StagedTable:
    def __init__(self, read: PointRead, write: Writer) -> None:
        self.read = read
        self.write = write
        self._states: dict[bytes, PairState | None] = {}
        self._windows: dict[bytes, dict[str, Any] | None] = {}
        #: partition → keys to write, in the order they were first changed (windows / pairs apart)
        self._dirty_windows: dict[int, dict[bytes, None]] = {}
        self._dirty_states: dict[int, dict[bytes, None]] = {}

    def state(self, partition: int, key: bytes) -> PairState | None:
        state = self._states.get(key, _ABSENT)
        if state is _ABSENT:
            raw = self.read(partition, key)
            state = self._states[key] = decode_state(raw) if raw is not None else None
        return state  # type: ignore[return-value]

    def put_state(self, partition: int, key: bytes, state: PairState | None) -> None:
        """``None`` deletes the key."""
        self._states[key] = state
        self._dirty_states.setdefault(partition, {})[key] = None

    def window(self, partition: int, key: bytes) -> dict[str, Any] | None:
        window = self._windows.get(key, _ABSENT)
        if window is _ABSENT:
            raw = self.read(partition, key)
            window = self._windows[key] = orjson.loads(raw) if raw is not None else None
        return window  # type: ignore[return-value]

    def put_window(self, partition: int, key: bytes, window: dict[str, Any] | None) -> None:
        """``None`` deletes the key."""
        self._windows[key] = window
        self._dirty_windows.setdefault(partition, {})[key] = None

    def is_staged(self, key: bytes) -> bool:
        return key in self._states

    def flush(self) -> list[Out]:
        """Write every changed key once; returns what the writer asks to produce (changelog records)."""
        produced: list[Out] = []
        windows, states = self._windows, self._states
        for partition in sorted(set(self._dirty_windows) | set(self._dirty_states)):
            items = [
                (key, None if windows[key] is None else orjson.dumps(windows[key]))
                for key in self._dirty_windows.get(partition, ())
            ]
            items += [
                (key, None if (state := states[key]) is None else encode_state(state))
                for key in self._dirty_states.get(partition, ())
            ]
            produced.extend(self.write(partition, items))
        self._dirty_windows.clear()
        self._dirty_states.clear()
        return produced
