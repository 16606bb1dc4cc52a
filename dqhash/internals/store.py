"""Faust's table stores read and written per partition, in bulk.

Faust has no public per-partition iteration nor bulk write; the RocksDB store (``faust.stores.rocksdb``)
keeps one rocksdict DB per partition (``_dbs``, opened by ``_db_for_partition``, iterated by
``_visible_items``), the memory store one dict for all partitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from faust.types import TP
from rocksdict import WriteBatch

from dqhash.core.partitioning import partition_for
from dqhash.core.records import Out
from dqhash.core.tuples import build
from dqhash.core.window_keys import is_window_key, window_partition_of
from dqhash.engine.ports import PointRead, Scan, Writer


def partition_scanner(partitions: int) -> Scan:
    """``scan(table, partition)``: the (key, value) pairs a table holds for one partition, read from a snapshot."""

    def scan(table: Any, partition: int) -> Iterator[tuple[bytes, bytes]]:
        store = table.data
        dbs = getattr(store, "_dbs", None)
        if dbs is not None:
            db = dbs.get(partition)
            return iter(()) if db is None else store._visible_items(db)
        return iter([(k, v) for k, v in list(store.data.items()) if _partition_of(k, partitions) == partition])

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


def batch_writer(table: Any) -> Writer:
    """``write(partition, items)``: a batch's keys of one partition, written the way Faust would, in bulk.

    Faust's ``table[key] = value`` writes RocksDB and queues one changelog record, with a callback that
    writes the persisted offset, per key. Here the store takes one RocksDB write batch per partition,
    and the changelog records are returned to be produced as one Kafka batch
    (``dqhash.kafka.batch_sender``), whose delivery writes the persisted offset once (:func:`persist_offset`).
    Same keys, values and tombstones in the same changelog partition: recovery and standbys read them
    as Faust's own.
    """
    store = table.data

    def changelog(partition: int, items: list[tuple[bytes, bytes | None]]) -> list[Out]:
        topic = table.changelog_topic.get_topic_name()
        return [build(Out, (topic, key, value, None, partition)) for key, value in items]

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


def persist_offset(table: Any) -> Callable[[int, int], None]:
    """``(partition, offset)`` of the newest delivered changelog record → the store's persisted offset."""

    def persisted(partition: int, offset: int) -> None:
        table.data.set_persisted_offset(TP(table.changelog_topic.get_topic_name(), partition), offset)

    return persisted


def _partition_of(key: bytes, partitions: int) -> int:
    return window_partition_of(key) if is_window_key(key) else partition_for(key.decode(), partitions)
