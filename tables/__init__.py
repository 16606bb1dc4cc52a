"""The changelog-backed tables, keyed by PK (bytes → bytes; dqhash encodes values itself).

``pairs``: the per-PK state both input agents and the tick agent read and
write (one table, so a pair costs one changelog record per change, not two),
and, under keys no PK can have, each partition's window counts (same table, so
the same changelog partition: counts and the pair changes that caused them
are recovered together; see ``Reconciler._apply_effects``).
"""

from __future__ import annotations

from typing import Iterator


from dqhash.app import app, settings
from dqhash.partitioning import partition_for
from dqhash.reconciler import is_window_key, window_partition_of

MIB = 1024 * 1024


def _raw_table(name: str, cache_mb: int, help: str):
    """A table of bytes → bytes: dqhash encodes values itself (compact, versioned).

    Faust derives a table's serializers from its types (bytes → json), so
    they are set to raw before the store and changelog topic, built lazily,
    pick them up.
    """
    table = app.Table(name, partitions=settings.partitions, key_type=bytes, value_type=bytes,
                      options=_rocksdb_options(cache_mb), help=help)
    table.key_serializer = table.value_serializer = "raw"
    return table


def _rocksdb_options(cache_mb: int) -> dict:
    """Sized per table: the store's default is a 2 GiB block cache per partition DB."""
    return {
        "block_cache_size": cache_mb * MIB,
        "block_cache_compressed_size": 0,
        "write_buffer_size": 16 * MIB,
        "max_write_buffer_number": 2,
    }


pairs = _raw_table("pairs", settings.rocksdb_cache_mb,
                   "per-PK pair state (newest on-prem event, newest cloud hash, fingerprints) and window counts")


def scan_partition(table, partition: int) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) pairs a table holds for one partition, read from a snapshot.

    Faust has no public per-partition iteration; the RocksDB store keeps one
    DB per partition (``_dbs``), the memory store one dict for all.
    """
    store = table.data
    dbs = getattr(store, "_dbs", None)
    if dbs is not None:
        db = dbs.get(partition)
        return iter(()) if db is None else store._visible_items(db)
    return iter([(k, v) for k, v in list(store.data.items()) if _partition_of(k) == partition])


def _partition_of(key: bytes) -> int:
    return window_partition_of(key) if is_window_key(key) else partition_for(key.decode(), settings.partitions)
