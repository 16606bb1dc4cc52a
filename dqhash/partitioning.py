"""Which partition a PK lives in: Kafka's default (murmur2) partitioner.

Both sides of a pair, the pair's table entry and its deadline ticks must sit in
the same partition number. This is the function Java clients, aiokafka and
librdkafka's ``murmur2_random`` use for keyed records, so records keyed by PK
from any of them land where dqhash looks for them.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(pk: str, partitions: int) -> int:
    return (murmur2(pk.encode()) & 0x7FFFFFFF) % partitions
