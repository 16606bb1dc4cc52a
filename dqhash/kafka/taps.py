"""What the consumer fetched for an agent's topic, handed to the agent a partition's batch at a time.

Faust hands every record on by itself: its drain loop (``wait_first``: two tasks and an ``asyncio.wait``
per record), the conductor (a lock, flow control, decoding into an ``Event``), a channel queue, the stream
iterator (sensors, context variables) and an acknowledgement through the event, the message and a lock.
That path alone costs several times what dqhash's reconciliation of the record costs (docs/performance.md,
"Taps"). The agents take whole
batches anyway, so the consumer (``dqhash.internals.transport.Consumer``) puts each partition's fetched records for a
tapped topic here as one :class:`Chunk`, and the agent takes everything buffered as one batch and
acknowledges it by offsets.

Kafka and Faust still decide who owns which partition, when, and from where it is read: a chunk carries
the partition's seek count and the consumer generation it was fetched under, so a chunk fetched before a
seek or a rebalance is never applied nor acknowledged (it is read again), and a revocation clears the tap.
No I/O here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple

from faust.types import TP


class Chunk(NamedTuple):
    """Consecutive records of one partition, as fetched (aiokafka ``ConsumerRecord``s, offset order)."""

    tp: TP
    records: Sequence[Any]
    #: the partition's seek count when they were fetched (``dqhash.internals.transport.count_seeks``)
    seeks: int
    #: Faust's consumer generation when they were handed over
    generation: int


class Tap:
    """A bounded buffer of chunks between the consumer and one agent (one reader, one writer)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._chunks: deque[Chunk] = deque()
        #: records buffered
        self.size = 0
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

    @property
    def full(self) -> bool:
        return self.size >= self.maxsize

    def put(self, chunk: Chunk) -> None:
        """Never waits: the consumer waits for :meth:`wait_space` once per fetch instead."""
        self._chunks.append(chunk)
        self.size += len(chunk.records)
        self._ready.set()
        if self.full:
            self._space.clear()

    async def wait_space(self) -> None:
        await self._space.wait()

    async def get(self, max_records: int) -> list[Chunk]:
        """Everything buffered, up to ``max_records`` records (a chunk is split if need be); waits for one."""
        while not self._chunks:
            self._ready.clear()
            await self._ready.wait()
        return self.take(max_records)

    def take(self, max_records: int) -> list[Chunk]:
        """What :meth:`get` returns, without waiting (an empty list if nothing is buffered)."""
        taken: list[Chunk] = []
        count = 0
        chunks = self._chunks
        while chunks and count < max_records:
            chunk = chunks.popleft()
            room = max_records - count
            if len(chunk.records) > room:
                chunks.appendleft(chunk._replace(records=chunk.records[room:]))
                chunk = chunk._replace(records=chunk.records[:room])
            taken.append(chunk)
            count += len(chunk.records)
        self._took(count)
        return taken

    def clear(self) -> int:
        """Drops everything buffered (partitions revoked: their records are read again from the commit)."""
        dropped = self.size
        self._chunks.clear()
        self._took(dropped)
        return dropped

    def _took(self, count: int) -> None:
        self.size -= count
        if not self.full:
            self._space.set()
