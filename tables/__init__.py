"""The changelog-backed tables, keyed by PK (bytes → bytes; dqhash encodes values itself).

``pairs``: the per-PK state both input agents and the tick agent read and write (one table, so a pair
costs one changelog record per change, not two), and, under keys no PK can have
(``dqhash.core.window_keys``), each partition's window counts (same table, so the same changelog
partition: counts and the pair changes that caused them are recovered together).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dqhash.runtime import Runtime

MIB = 1024 * 1024


def register(runtime: Runtime) -> Any:
    """The pair table, on the runtime's app."""
    settings = runtime.settings
    return raw_table(
        runtime.app,
        "pairs",
        settings.partitions,
        "per-PK pair state (newest on-prem event, newest cloud hash, fingerprints) and window counts",
    )


def raw_table(app: Any, name: str, partitions: int, help: str) -> Any:
    """A table of bytes → bytes: dqhash encodes values itself (compact, versioned).

    Faust derives a table's serializers from its types (bytes → json), so they are set to raw before the
    store and changelog topic, built lazily, pick them up.
    """
    table = app.Table(
        name, partitions=partitions, key_type=bytes, value_type=bytes, options=rocksdb_options(), help=help
    )
    table.key_serializer = table.value_serializer = "raw"
    return table


def rocksdb_options() -> dict[str, int]:
    """Per partition DB. The block cache is the worker's one shared cache (``dqhash.internals.rocksdb_memory``,
    DQHASH_ROCKSDB_MEMORY_MB), which also bounds these memtables; the size here only keeps the cache Faust makes
    and then sets aside small (its default is 2 GiB)."""
    return {
        "block_cache_size": MIB,
        "block_cache_compressed_size": 0,
        "write_buffer_size": 16 * MIB,
        "max_write_buffer_number": 2,
        # Faust's default is 3 bits a key; a pair's first side reads a key the table does not hold, and 10 bits
        # (1.25 bytes a key) make those misses cheaper (docs/performance.md, "Per-record constant costs")
        "bloom_filter_size": 10,
    }
