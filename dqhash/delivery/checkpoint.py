"""What makes a worker's results exact, per partition and batch: its checkpoint (docs/delivery.md).

An agent applies a batch (the engine, against a staged copy of the table, writing through :attr:`Checkpoint.write`)
and hands what it returned to :meth:`Checkpoint.commit`, which decides whether and when the outputs are published
and the records acknowledged. The checkpoint owns, in one place:

- the order in which batches' outputs are queued: a replay of the changelog in offset order ends on the state
  this worker holds;
- the ownership lease: nothing is published for partitions this worker may no longer own (docs/fencing.md);
- the changelog: the writer whose records carry this owner's epoch, the fence on replays, the epoch claims, and
  the persisted offset moved when a changelog batch is delivered;
- the acknowledgement of a batch's records, after which Faust commits their offsets;
- the revocation of partitions, which goes through the same queue and the same lease rule as a batch.

The step numbers in the comments are those of docs/delivery.md, which says what a crash between any two of them
leaves behind and how the next owner repairs it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from dqhash.core.epochs import EpochGate, epoch_header, epoch_key
from dqhash.core.records import Out
from dqhash.internals.clients import started_producer
from dqhash.internals.store import (
    batch_writer,
    fence_changelog_replay,
    persist_offset,
    persists_offsets,
    stored_epoch,
    wipe_partition,
)
from dqhash.internals.transport import Consumer as TappingConsumer
from dqhash.kafka.changelog import read_range
from dqhash.kafka.ownership import Ownership
from dqhash.kafka.security import connect_args
from dqhash.kafka.taps import Chunk
from dqhash.settings import Settings

log = logging.getLogger("dqhash.delivery")

#: what publishes a batch's outputs (``dqhash.agents.Outputs.produce``)
Produce = Callable[[list[Out]], Awaitable[None]]


@dataclass(frozen=True)
class Batch:
    """A batch an agent applied, ready to commit."""

    #: what to produce, the table's changelog records first
    outs: list[Out]
    #: the consumer generation the batch was applied under
    generation: int
    #: its input records (for the log)
    size: int
    #: marks its input records processed, so that Faust may commit their offsets
    acknowledge: Callable[[], Awaitable[None]]


class Checkpoint:
    def __init__(self, app: Any, pairs: Any, settings: Settings, produce: Produce) -> None:
        self.app, self.pairs, self.settings = app, pairs, settings
        #: publishes a batch's outputs (replaced in tests)
        self.produce = produce
        self.ownership = Ownership(settings.session_timeout)
        self.epochs = EpochGate(stored_epoch(pairs))
        #: step 3: writes a batch's keys of one partition and returns their changelog records, stamped with the
        #: epoch this worker claimed (handed to the engine)
        self.write = batch_writer(pairs, self.epochs)
        self.changelog: str = pairs.changelog_topic.get_topic_name()
        fence_changelog_replay(pairs, self.epochs)
        #: step 7, called by the producer when a changelog batch is delivered (see :meth:`on_changelog_delivered`)
        self.on_changelog_delivered = persist_offset(pairs, trusted=self.owns)
        #: the turn of the batch applied last: the next one publishes after it
        self._last: asyncio.Future[None] | None = None
        #: the changelog partitions this worker owns, as of the last assignment
        self.actives: set[int] = set()

    # --- a batch ------------------------------------------------------------------------------------------

    def generation(self) -> int:
        """The consumer generation now: read it before applying a batch, for :class:`Batch`."""
        generation: int = self.app.consumer_generation_id
        return generation

    async def admit(self, chunks: Iterable[Chunk], consumer: Any) -> list[Chunk]:
        """Step 1: the chunks still to be applied. Chunks fetched before a seek or a rebalance of their partition
        are read again; without the lease (woken from a pause) it waits, as its outputs would (step 5)."""
        current = [chunk for chunk in chunks if consumer.is_current(chunk)]
        if current and not self.ownership.held():
            await self.ownership.wait_held()
            current = [chunk for chunk in current if consumer.is_current(chunk)]
        return current

    async def commit(self, batch: Batch) -> bool:
        """Publishes a batch's outputs and acknowledges its records; returns whether the outputs were published.

        Await it right after applying the batch: the batch's turn is taken before the first await, so outputs are
        queued in the order batches were applied, while the next batch is applied meanwhile.
        """
        previous, mine = self._take_turn()
        try:
            if previous is not None:
                await asyncio.shield(previous)  # 4. queued after the batch applied before it
            published = await self._publishable(batch)  # 5. the lease holds, or is renewed in the same generation
            if published:
                await self.produce(batch.outs)  # 6. produced; 7. the persisted offset follows the changelog's delivery
            await batch.acknowledge()  # 8. acknowledged; 9. Faust commits acknowledged offsets, producer flushed first
            return published
        finally:
            mine.set_result(None)

    def owns(self) -> bool:
        """The lease holds, or no consumer group keeps one (Faust's test tooling)."""
        return not isinstance(self.app.consumer, TappingConsumer) or self.ownership.held()

    def _take_turn(self) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        previous, mine = self._last, asyncio.get_running_loop().create_future()
        self._last = mine
        return previous, mine

    async def _publishable(self, batch: Batch) -> bool:
        """A worker frozen between applying a batch and publishing it wakes up without a lease. If a heartbeat of
        the batch's generation renews it, no one else owned the partitions: publish. If the partitions were
        revoked or reassigned meanwhile, the records are read again by their owner, and the outputs, built from
        state that owner has moved past, are dropped (this worker's copy of that state is wiped: :meth:`revoke`).
        """
        if self.owns() or await self.ownership.settle(batch.generation):
            return True
        log.warning(
            "dropped the outputs of a batch of %d records applied before a pause: its partitions were revoked "
            "meanwhile (generation %s), and their owner reads those records again",
            batch.size,
            batch.generation,
        )
        return False

    # --- ownership ----------------------------------------------------------------------------------------

    def assigned(self, consumer: Any, generation: int, changelog_partitions: set[int]) -> None:
        """A new assignment: a fresh lease, kept by the consumer's heartbeats."""
        if isinstance(consumer, TappingConsumer) and not self.ownership.attached:
            self.ownership.attach(consumer.heartbeats)
        self.ownership.assigned(generation)
        self.actives = changelog_partitions

    async def revoke(self) -> None:
        """The partitions are taken away, through the same queue as a batch.

        The revocation ends the generation, so a batch waiting for the lease is settled at once (dropped: its
        records are read again by their owner), and one being produced is waited for, up to a session timeout.
        Then the epochs are released and, if the lease lapsed while the partitions were held, their local state
        is wiped (it may hold what was applied and never published, or published after a new owner's records):
        their next recovery replays the changelog, fenced by epoch, from its start.
        """
        lapsed = self.ownership.revoked()
        previous, mine = self._take_turn()
        try:
            if previous is not None:
                await self._wait_turn(previous)
            for partition in self.actives:
                self.epochs.release(partition)
            if lapsed and self.actives:
                self._wipe(sorted(self.actives))
            self.actives = set()
        finally:
            mine.set_result(None)

    async def _wait_turn(self, previous: asyncio.Future[None]) -> None:
        timeout = self.settings.session_timeout
        try:
            await asyncio.wait_for(asyncio.shield(previous), timeout)
        except TimeoutError:
            log.warning(
                "a batch was still being produced %.0fs after its partitions were revoked (is the broker slow?): "
                "revoking them anyway; its records are read again by their next owner",
                timeout,
            )

    def _wipe(self, partitions: list[int]) -> None:
        wiped = {p: wipe_partition(self.pairs, p, self.settings.partitions) for p in partitions}
        for partition in wiped:
            self.epochs.forget(partition)
        log.warning(
            "the ownership lease lapsed while partitions %s were held: wiped their local state (%s keys) so "
            "their next recovery replays the changelog from its start",
            partitions,
            sum(wiped.values()),
        )

    def _recreated(self, partition: int, recovered: int, marker: int) -> None:
        """The changelog is shorter than the local state says it has read: the topic was recreated (an embedded
        broker restarted, a topic deleted). The local state belongs to the old topic: it is wiped, and the
        partition starts from what the new topic holds."""
        wiped = wipe_partition(self.pairs, partition, self.settings.partitions)
        log.warning(
            "partition %d of %s holds fewer records (its epoch marker went to offset %d) than this worker's local "
            "state had read (offset %d): the topic was recreated. Wiped the partition's local state (%d keys); it "
            'starts from what the topic holds now (docs/runbook.md, "The broker\'s topics were recreated")',
            partition,
            self.changelog,
            marker,
            recovered,
            wiped,
        )

    # --- epochs -------------------------------------------------------------------------------------------

    async def claim(self, partitions: list[int]) -> list[int]:
        """Once the table is recovered: an epoch for each owned partition (``core.epochs``)."""
        epochs = list(await asyncio.gather(*(self._claim(partition) for partition in partitions)))
        if partitions:
            log.info("claimed epochs %s for partitions %s", epochs, partitions)
        return epochs

    async def _claim(self, partition: int) -> int:
        """Writes the partition's epoch marker, catches up with whatever landed between the recovered end and
        the marker (a paused owner's late records: every replay applies them, so this owner does too), then
        claims the epoch: its own records carry it, and replays refuse older epochs after the marker."""
        changelog = self.changelog
        tp = TP(changelog, partition)
        epoch = self.epochs.newest(partition) + 1
        key, value = epoch_key(partition), str(epoch).encode()
        marker = await started_producer(self.app).send_and_wait(
            changelog, value, key=key, partition=partition, headers=[epoch_header(epoch)]
        )
        recovered = self.pairs.data.persisted_offset(tp)
        if recovered is not None and marker.offset <= recovered:
            self._recreated(partition, recovered, marker.offset)
            recovered = None
        start = 0 if recovered is None else recovered + 1
        if marker.offset > start and persists_offsets(self.pairs):  # the memory store recovers all, every time
            landed = await read_range(connect_args(self.settings), changelog, partition, start, marker.offset)
            self.pairs.apply_changelog_batch(landed)  # fenced by epoch, exactly as any replay applies them
            if recovered is not None:
                log.warning(
                    "%d changelog records of partition %d landed after its recovery and before this owner's epoch "
                    "marker (a paused owner's late writes?): applied as any replay applies them",
                    len(landed),
                    partition,
                )
        claimed = self.epochs.claim(partition)
        if claimed != epoch:  # a record of a newer epoch before the marker: another owner claimed it meanwhile
            raise RuntimeError(f"partition {partition}: epoch {claimed} claimed after writing marker {epoch}")
        self.write(partition, [(key, value)])  # the local copy; the changelog record is the marker
        self.pairs.data.set_persisted_offset(tp, marker.offset)
        return epoch
