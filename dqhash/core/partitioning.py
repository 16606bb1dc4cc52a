"""Which partition a PK lives in: Kafka's default (murmur2) partitioner.

Both sides of a pair, the pair's table entry and its deadline ticks must sit in
the same partition number. This is the function Java clients, aiokafka and
librdkafka's ``murmur2_random`` use for keyed records, so records keyed by PK
from any of them land where dqhash looks for them.

Computed for every input record and every output keyed by PK. Where the install built
``_fasthash`` (a C compiler at hand) the whole partitioner runs in C; ``murmur2`` here
is the reference and the fallback, reading whole 32-bit words at once (``struct``)
rather than aiokafka's byte-by-byte loop. ``tests/unit`` checks the reference equals
aiokafka's ``murmur2``, and the compiled path the reference, on arbitrary bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from struct import Struct

try:
    from dqhash.core._fasthash import key_partition as _compiled  # type: ignore[import-not-found, import-untyped]
except ImportError:  # built without a C compiler: the reference below
    _compiled = None

_SEED, _M, _MASK = 0x9747B28C, 0x5BD1E995, 0xFFFFFFFF
#: little-endian 32-bit words, by count: compiled once, not a format string per call
_WORDS = [Struct(f"<{n}I") for n in range(64)]


def murmur2(data: bytes) -> int:
    length = len(data)
    h = _SEED ^ length
    words = length >> 2
    if words:
        for k in (_WORDS[words] if words < 64 else Struct(f"<{words}I")).unpack_from(data):
            k = (k * _M) & _MASK
            h = ((h * _M) & _MASK) ^ (((k ^ (k >> 24)) * _M) & _MASK)
    tail = length & 3
    if tail:
        rest = length & ~3
        if tail == 3:
            h ^= data[rest + 2] << 16
        if tail >= 2:
            h ^= data[rest + 1] << 8
        h = ((h ^ data[rest]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def reference_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record keyed ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


#: keys up to this length are remembered by the reference partitioner: PKs, mostly short. A longer key (a dead
#: letter keeps its record's own key, which may be anything) is hashed each time, so the cache holds at most
#: 65,536 keys of this length, whatever producers send
CACHED_KEY_BYTES = 256
_cached_reference = lru_cache(maxsize=65_536)(reference_partition)


def cached_reference_partition(key: bytes, partitions: int) -> int:
    """The reference, cached for short keys (a pair's inputs, its re-keyed record and its audit record come
    moments apart: one hash)."""
    if len(key) <= CACHED_KEY_BYTES:
        return _cached_reference(key, partitions)
    return reference_partition(key, partitions)


#: the partitioner: compiled where built; else the reference, cached for short keys
key_partition: Callable[[bytes, int], int] = _compiled or cached_reference_partition
COMPILED = _compiled is not None


def partition_for(pk: str, partitions: int) -> int:
    return key_partition(pk.encode(), partitions)
