"""One bound on a worker's RocksDB memory: every DB Faust opens shares one block cache, its memtables charged to it.

Through Faust's own ``RocksDBOptions.open``, as the stores open their partition DBs; the usage read back is
RocksDB's own accounting.
"""

import pytest
from faust.stores.rocksdb import RocksDBOptions

from dqhash.internals import rocksdb_memory
from dqhash.ops.memory import process_memory
from tables import rocksdb_options

MIB = 1024 * 1024


@pytest.fixture
def shared(monkeypatch):
    """A fresh install, undone after the test (the wrap is process-wide)."""
    monkeypatch.setattr(rocksdb_memory, "_shared", None)
    monkeypatch.setattr(RocksDBOptions, "as_options", rocksdb_memory._stock_as_options)
    return rocksdb_memory.install(8)


def test_every_db_shares_the_one_cache_and_charges_its_memtables_to_it(shared, tmp_path):
    dbs = [RocksDBOptions(**rocksdb_options()).open(tmp_path / f"p{n}") for n in range(3)]
    try:
        for n, db in enumerate(dbs):
            assert db.property_int_value("rocksdb.block-cache-capacity") == 8 * MIB, n  # not its own 1 MiB
            for i in range(2_000):
                db[f"key-{n}-{i:05d}".encode()] = b"x" * 200
        assert shared.manager.get_usage() > 0  # the memtables, charged to the shared cache
        memtables = sum(db.property_int_value("rocksdb.cur-size-all-mem-tables") for db in dbs)
        assert shared.cache.get_usage() >= memtables > 0
        for n, db in enumerate(dbs):
            db.flush()
            assert db[f"key-{n}-00001".encode()] == b"x" * 200
        tables = [type("Table", (), {"data": type("Store", (), {"_dbs": dict(enumerate(dbs))})()})()]
        usage = rocksdb_memory.usage(tables)
        assert usage["rocksdb_instances"] == 3 and usage["rocksdb_bound"] == 8 * MIB
        assert usage["rocksdb_block_cache"] == shared.cache.get_usage() > 0
        assert usage["rocksdb_table_readers"] > 0  # three flushed files' indexes and filters
    finally:
        for db in dbs:
            db.close()


def test_a_second_install_resizes_the_bound_and_wraps_once(shared):
    wrapped = RocksDBOptions.as_options
    again = rocksdb_memory.install(16)
    assert again is shared and RocksDBOptions.as_options is wrapped
    assert shared.manager.get_buffer_size() == 8 * MIB  # half of 16 MiB


def test_the_process_parts_add_up_to_at_most_the_rss():
    parts = process_memory()
    assert parts["rss"] > 0 and parts["rss_peak"] >= parts["rss"]
    if "malloc_in_use" in parts:  # glibc
        assert parts["malloc_in_use"] > 0 and parts["outside_malloc"] <= parts["rss"]
