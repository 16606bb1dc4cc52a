"""One bound on a worker's RocksDB memory: one block cache shared by every table and partition, with their
memtables charged to it.

Faust's RocksDB store opens one DB per table partition, each with its own block cache
(``RocksDBOptions.as_options``), so RocksDB's memory grew with the partitions a worker holds and had no single
setting. No option reaches the table factory, so ``install`` wraps ``as_options``. It takes Faust's options and
replaces the table factory with one on the worker's shared cache, keeping Faust's bloom filter and index type
(``symbols.COPIES``). It also adds a write buffer manager that charges memtables to that cache and flushes them
past half of it. ``usage`` reads the parts back for ``/dq/memory`` and the benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import rocksdict
from faust.stores import rocksdb as faust_rocksdb

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: the share of the bound memtables may take before the write buffer manager flushes them
MEMTABLE_SHARE = 0.5


class SharedMemory:
    """The worker's block cache and write buffer manager: every DB Faust opens after ``install`` uses them."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.cache = rocksdict.Cache(memory_mb * MIB)
        self.manager = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            int(memory_mb * MIB * MEMTABLE_SHARE), False, self.cache
        )

    def table_factory(self, faust_options: Any) -> rocksdict.BlockBasedOptions:
        """Faust's table factory (``RocksDBOptions.as_options``: its bloom filter, binary-search index), on the
        shared cache."""
        factory = rocksdict.BlockBasedOptions()
        factory.set_bloom_filter(faust_options.bloom_filter_size, block_based=True)
        factory.set_block_cache(self.cache)
        factory.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        return factory


_shared: SharedMemory | None = None
_stock_as_options = faust_rocksdb.RocksDBOptions.as_options


def install(memory_mb: int) -> SharedMemory:
    """Every RocksDB DB the process opens from now on shares one cache of ``memory_mb`` MiB (idempotent: a second
    call resizes the cache)."""
    global _shared
    if _shared is not None:
        _shared.cache.set_capacity(memory_mb * MIB)
        _shared.manager.set_buffer_size(int(memory_mb * MIB * MEMTABLE_SHARE))
        _shared.memory_mb = memory_mb
        return _shared
    shared = _shared = SharedMemory(memory_mb)

    def as_options(self: Any) -> Any:
        options = _stock_as_options(self)
        if self.use_rocksdict:
            options.set_block_based_table_factory(shared.table_factory(self))
            options.set_write_buffer_manager(shared.manager)
        return options

    faust_rocksdb.RocksDBOptions.as_options = as_options  # type: ignore[method-assign]
    log.info("RocksDB: one %d MiB block cache for every table and partition, memtables charged to it", memory_mb)
    return shared


def shared() -> SharedMemory | None:
    return _shared


def usage(tables: Iterable[Any]) -> dict[str, int]:
    """RocksDB's memory in bytes: the shared cache's usage (blocks and the memtables charged to it), the memtables
    alone, the pinned blocks, and the table readers (indexes and filters outside the cache) of every open DB."""
    dbs = [db for table in tables for db in list((getattr(table.data, "_dbs", None) or {}).values())]
    readers = sum(db.property_int_value("rocksdb.estimate-table-readers-mem") or 0 for db in dbs)
    memtables = sum(db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0 for db in dbs)
    parts = {"rocksdb_instances": len(dbs), "rocksdb_table_readers": readers, "rocksdb_memtables": memtables}
    if _shared is not None:
        parts.update(
            rocksdb_bound=_shared.memory_mb * MIB,
            rocksdb_block_cache=_shared.cache.get_usage(),
            rocksdb_block_cache_pinned=_shared.cache.get_pinned_usage(),
        )
    return parts
