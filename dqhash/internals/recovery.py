"""Faust's table recovery and standbys, fed a partition's fetched changelog records at a time.

Faust's recovery (``faust.tables.recovery.Recovery._slurp_changelogs``) takes each changelog record through
the consumer's per-record path (the drain loop, the conductor, an ``Event``, a flow-control queue) and then
awaits that queue once per record, inside ``asyncio.wait_for``, recomputing what is left to restore after
every record. That path, not RocksDB, set how fast a worker that lost its data dir came back, and what a standby
replica, which follows its partitions' changelogs by the same loop, cost its worker (docs/performance.md has the
figures before and after).

Here the changelog topics are read through a tap (``dqhash.kafka.taps``), as the input topics are: the
consumer puts each changelog partition's fetched records in it as one chunk, under the same rules (flow,
active partitions, seeks, read offset), and the loop below applies a chunk as one batch through the table's
``apply_changelog_batch`` (so through the epoch fence, ``store.fence_changelog_replay``, and Faust's store,
which writes the persisted offset). Faust's ``Recovery`` keeps everything else: which partitions are active
or standby, their offsets and high waters, when recovery starts and ends, the seeks, its progress log.

Faust's loop also probes for aborted transactions when the changelog stops short of its high water; that
only happens under ``processing_guarantee="exactly_once"``, which dqhash does not use (``dqhash.runtime``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from itertools import repeat
from time import monotonic
from typing import Any

from faust.tables.manager import TableManager as FaustTableManager
from faust.tables.recovery import Recovery
from faust.utils.tracing import finish_span
from mode import Service

from dqhash.kafka.changelog import replayed
from dqhash.kafka.taps import Chunk, Tap

log = logging.getLogger(__name__)

#: records taken off the changelog tap at once; a chunk is applied as one RocksDB write batch
APPLY_MAX_RECORDS = 10_000
#: how long the loop waits for records before it checks whether recovery is done anyway (Faust's own)
IDLE_CHECK_S = 5.0


def unseen(records: Sequence[Any], seen: int | None) -> Sequence[Any]:
    """The records past ``seen``, the offset recovery last applied (Faust applies only ``offset > seen``)."""
    if seen is None or not records or records[0].offset > seen:
        return records
    return [record for record in records if record.offset > seen]


class BulkRecovery(Recovery):
    """Faust's recovery, with the changelog loop replaced by one that applies whole chunks."""

    def __init__(self, app: Any, tables: Any, **kwargs: Any) -> None:
        super().__init__(app, tables, **kwargs)
        self.changelog_tap = Tap(maxsize=max(app.conf.stream_buffer_maxsize, 2 * APPLY_MAX_RECORDS))
        #: records applied to active partitions since this recovery began, and when its first was applied
        self.restored = 0
        self._restore_began: float | None = None

    async def on_start(self) -> None:
        """The changelog partitions are paused until recovery resumes them, so no record can miss the tap."""
        await super().on_start()
        taps = getattr(self.app.consumer, "taps", None)
        if taps is None:
            raise RuntimeError("dqhash's recovery needs dqhash's consumer (dqhash.internals.transport)")
        for topic in self.tables.changelog_topics:
            taps[topic] = self.changelog_tap

    @Service.task
    async def _slurp_changelogs(self) -> None:
        consumer = self.app.consumer
        while not self.should_stop:
            self.signal_recovery_end.clear()
            try:
                chunks = await asyncio.wait_for(self.changelog_tap.get(APPLY_MAX_RECORDS), timeout=IDLE_CHECK_S)
            except TimeoutError:
                self._maybe_end_recovery()
                continue
            try:
                for chunk in chunks:
                    if consumer.is_current(chunk):  # not sought since, same generation, flow running
                        await self.apply_chunk(chunk)
            except Exception as exc:  # Faust's loop logs and goes on, too: the next rebalance retries
                log.warning("Error in recovery: %s", exc, exc_info=True)
            self._maybe_end_recovery()
            self._maybe_standbys_ready()

    async def apply_chunk(self, chunk: Chunk) -> int:
        """Applies a changelog partition's records past the offset recovery reached; returns how many."""
        tp = chunk.tp
        active = tp in self.active_tps
        if active:
            offsets, received = self.active_offsets, self._active_events_received_at
        elif tp in self.standby_tps:
            offsets, received = self.standby_offsets, self._standby_events_received_at
        else:
            log.warning(
                "recovery: %s is neither an active nor a standby partition; %d records skipped", tp, len(chunk.records)
            )
            return 0
        records = unseen(chunk.records, offsets.get(tp))
        if not records:
            return 0
        started = monotonic()
        table = self.tp_to_table[tp]
        events = [replayed(tp, record) for record in records]
        # applied before anything awaits: a rebalance cannot come between the caller's check that the chunk is
        # current and the write (Faust's loop, too, applies its buffer after the events' hooks have run)
        offsets[tp] = records[-1].offset
        table.apply_changelog_batch(events)
        now = monotonic()
        received[tp] = self._last_flush_at = now
        if active:
            self._sample_processing_time(now, (now - started) / len(records), len(records))
            if self._restore_began is None:
                self._restore_began = started
            self.restored += len(records)
        for event in events:  # the table's changelog hook (dqhash's tables set none)
            await table.on_changelog_event(event)
        return len(records)

    def _sample_processing_time(self, now: float, per_record: float, count: int) -> None:
        """Faust estimates the time left from the last 1,000 per-record times; one chunk gives ``count`` of them."""
        times = self._processing_times
        limit = self.num_samples_required_for_estimate
        times.extend(repeat(per_record, min(count, limit)))
        while len(times) > limit:
            times.popleft()
        self._last_active_event_processed_at = now

    def _maybe_end_recovery(self) -> None:
        """Faust's rule: recovery ends once every active changelog partition is read to its high water."""
        if self.in_recovery and not self.need_recovery():
            self.flush_buffers()
            self._set_recovery_ended()
            if self._actives_span is not None:
                self._actives_span.set_tag("Actives-Ready", True)
            self.signal_recovery_end.set()
            self._log_restored()

    def _log_restored(self) -> None:
        if self.restored and self._restore_began is not None:
            took = max(monotonic() - self._restore_began, 1e-6)
            log.info(
                "restored %s changelog records in %.1f s (%s a second)",
                f"{self.restored:,}",
                took,
                f"{self.restored / took:,.0f}",
            )
        self.restored, self._restore_began = 0, None

    def _maybe_standbys_ready(self) -> None:
        if self._standbys_span is None and self.tables.standbys_ready:
            return
        if not self.standby_remaining_total():
            log.debug("Completed standby partition fetch")
            if self._standbys_span is not None:
                finish_span(self._standbys_span)
                self._standbys_span = None
            self.tables.on_standbys_ready()


class TableManager(FaustTableManager):
    """Faust's table manager, with :class:`BulkRecovery` (Faust's ``TableManager`` setting names this class)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = BulkRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
