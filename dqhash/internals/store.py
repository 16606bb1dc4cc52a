"""Faust's table stores read and written per partition, in bulk, and their changelog replay fenced by epoch.

Faust has no public per-partition iteration, bulk write or wipe; the RocksDB store (``faust.stores.rocksdb``)
keeps one rocksdict DB per partition (``_dbs``, opened by ``_db_for_partition``, iterated by
``_visible_items``), the memory store one dict for all partitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from faust.types import TP
from rocksdict import WriteBatch

from dqhash.core.epochs import EpochGate, decode_epoch, epoch_header, epoch_key, epoch_of, is_epoch_key
from dqhash.core.partitioning import partition_for
from dqhash.core.records import Out
from dqhash.core.snapshots import is_snapshot_key, snapshot_partition_of
from dqhash.core.tuples import build
from dqhash.core.window_keys import is_window_key, window_partition_of
from dqhash.engine.ports import PointRead, Scan, Writer


def partition_scanner(partitions: int) -> Scan:
    """``scan(table, partition)``: the (key, value) pairs a table holds for one partition, read from a snapshot."""

    def scan(table: Any, partition: int, after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        store = table.data
        dbs = getattr(store, "_dbs", None)
        if dbs is not None:
            db = dbs.get(partition)
            if db is None:
                return iter(())
            if after is None:
                items = store._visible_items(db)
            else:  # rocksdict seeks to the first key at or after it
                offset_key = store.offset_key
                items = ((k, v) for k, v in db.items(from_key=after) if k != after and k != offset_key)
            return ((k, v) for k, v in items if not is_epoch_key(k))  # the epoch marker
        return iter(
            sorted(
                (k, v)
                for k, v in list(store.data.items())
                if not is_epoch_key(k) and _partition_of(k, partitions) == partition and (after is None or k > after)
            )
        )

    return scan


def partition_reader(table: Any) -> PointRead:
    """``read(partition, key)``: a point read of one partition's store, without Faust's mapping layers.

    ``table.get(key)`` goes through Faust's sensors, serializers and, for a key it does not hold, a
    ``KeyError`` and a probe of every partition's DB; the reconciler always knows the partition.
    """
    store = table.data
    if getattr(store, "_dbs", None) is not None:
        open_db = store._db_for_partition
        return lambda partition, key: open_db(partition).get(key)
    return lambda partition, key: store.data.get(key)


def batch_writer(table: Any, epochs: EpochGate | None = None) -> Writer:
    """``write(partition, items)``: a batch's keys of one partition, written the way Faust would, in bulk.

    Faust's ``table[key] = value`` writes RocksDB and queues one changelog record, with a callback that
    writes the persisted offset, per key. Here the store takes one RocksDB write batch per partition,
    and the changelog records are returned to be produced as one Kafka batch
    (``dqhash.kafka.batch_sender``), whose delivery writes the persisted offset once (:func:`persist_offset`).
    Same keys, values and tombstones in the same changelog partition: recovery and standbys read them
    as Faust's own. Each record carries the epoch this worker claimed for the partition (``core.epochs``).
    """
    store = table.data

    def changelog(partition: int, items: list[tuple[bytes, bytes | None]]) -> list[Out]:
        topic = table.changelog_topic.get_topic_name()
        epoch = epochs.claimed(partition) if epochs is not None else None
        headers = [epoch_header(epoch)] if epoch is not None else None
        return [build(Out, (topic, key, value, headers, partition)) for key, value in items]

    if getattr(store, "_dbs", None) is not None:

        def write(partition: int, items: list[tuple[bytes, bytes | None]]) -> list[Out]:
            batch = WriteBatch(raw_mode=True)
            for key, value in items:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            store._db_for_partition(partition).write(batch)
            return changelog(partition, items)
    else:

        def write(partition: int, items: list[tuple[bytes, bytes | None]]) -> list[Out]:
            for key, value in items:
                if value is None:
                    store.data.pop(key, None)
                else:
                    store.data[key] = value
            return changelog(partition, items)

    return write


def persist_offset(table: Any, trusted: Callable[[], bool] = lambda: True) -> Callable[[int, int], None]:
    """``(partition, offset)`` of the newest delivered changelog record → the store's persisted offset.

    Not while ``trusted()`` is false (the ownership lease is not held): a batch delivered after a new
    owner took over sits past the new owner's records, and a persisted offset there would make this
    worker's next recovery skip them.
    """

    def persisted(partition: int, offset: int) -> None:
        if trusted():
            table.data.set_persisted_offset(TP(table.changelog_topic.get_topic_name(), partition), offset)

    return persisted


def persists_offsets(table: Any) -> bool:
    """Whether the table's store keeps a persisted offset (RocksDB) or recovers everything each time (memory)."""
    return getattr(table.data, "_dbs", None) is not None


def stored_epoch(table: Any) -> Callable[[int], int]:
    """``epoch(partition)``: the newest epoch a partition's local state holds (its marker key; 0 if none)."""
    read = partition_reader(table)
    return lambda partition: decode_epoch(read(partition, epoch_key(partition)))


def fence_changelog_replay(table: Any, epochs: EpochGate) -> None:
    """Recovery and standbys apply a changelog record only if ``epochs`` admits it (``core.epochs``).

    Wraps the table's public ``apply_changelog_batch`` (Faust's recovery calls it for every batch it
    reads). The persisted offset still moves past refused records: they are refused again on any replay.
    """
    apply = table.apply_changelog_batch

    def apply_admitted(batch: Any) -> None:
        events = list(batch)
        admitted = [e for e in events if epochs.admits(e.message.partition, epoch_of(e.message.headers))]
        if admitted:
            apply(admitted)
        if len(admitted) < len(events):
            newest: dict[TP, int] = {}
            for event in events:
                tp = event.message.tp
                newest[tp] = max(newest.get(tp, -1), event.message.offset)
            for tp, offset in newest.items():
                table.data.set_persisted_offset(tp, offset)

    table.apply_changelog_batch = apply_admitted


def wipe_partition(table: Any, partition: int, partitions: int) -> int:
    """Deletes a partition's local state and its persisted offset: its next recovery replays the whole changelog.

    For state this worker cannot vouch for (applied during a lapsed lease, possibly never published, or
    published after a new owner's records). Returns the keys deleted.
    """
    store = table.data
    if getattr(store, "_dbs", None) is not None:
        db = store._db_for_partition(partition)
        batch = WriteBatch(raw_mode=True)
        count = 0
        for key in db.keys():
            batch.delete(key)
            count += 1
        db.write(batch)  # the persisted offset is a key of the same DB: gone too
        return count
    data = store.data
    doomed = [
        k
        for k in list(data)
        if k == epoch_key(partition) or (not is_epoch_key(k) and _partition_of(k, partitions) == partition)
    ]
    for key in doomed:
        del data[key]
    return len(doomed)


def _partition_of(key: bytes, partitions: int) -> int:
    if is_window_key(key):
        return window_partition_of(key)
    if is_snapshot_key(key):
        return snapshot_partition_of(key)
    return partition_for(key.decode(), partitions)
