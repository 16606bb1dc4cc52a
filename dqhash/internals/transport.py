"""Faust's aiokafka transport with three fixes that keep a rebalance from losing records, and the taps.

docs/delivery.md ("The transport's fixes") tells how each loss was found and what the fixes measured.

First, a partition with no committed offset restarts from the reset policy after every rebalance. When a
rebalance stops the flow while a fetch is in flight, Faust's ``Consumer.getmany`` drops the records that
fetch returns, yet aiokafka's position has already moved past them. Faust then seeks every assigned
partition to its committed offset — except partitions with none (aiokafka seeks only to offsets > 0), which
keep the advanced position, so their first records would never be processed. Rewinding such partitions is
what a fresh assignment would do anyway; records processed again are recognised by the reconciler's applied
offsets.

Second, the commit: Faust commits the first run of consecutive acknowledged offsets wherever it
starts when a partition has no committed offset (and lets a one-record hole through when it has one), so
a record that was read but never processed (a stream skips records fetched while flow control is off or
the generation changed, i.e. during a rebalance) would be committed past and lost. Here a commit only
extends the committed offset by the records after it that were acknowledged; a record read and not
acknowledged holds the commit and is read again (:func:`committable`, ``Consumer._new_offset``).

Third, each partition is applied in order across seeks. Faust's drain loop kept handing out records fetched
before a seek (its own seek to committed offsets after a rebalance, or a re-read), raised its read offset
past the sought offset with each, and dropped the re-fetched records as already read: a hole, with the
records after it applied first, which the reconciler's applied offsets and window counts do not allow. The
consumer thread counts every seek of each partition (:func:`count_seeks`) and stamps each record with the
count it was fetched under; a record of a partition sought since is stale (``Consumer.is_stale``): never
handed out, skipped by the agents, its acknowledgement not counted, and read again from where the seek went.
Faust's stream also acknowledges the records it skips during a rebalance; those are not counted either
(``Consumer.ack``). And when Faust's ``getmany`` stops handing out a batch (the flow stopped), the partitions
it left records of are sought back to them unless another seek came first (``Consumer._seek_back_to_dropped``).

Fourth, not a fix but the worker's throughput: the partitions of topics an agent reads through a tap
(``dqhash.kafka.taps``) skip Faust's per-record path. ``_wait_next_records`` puts each such partition's fetched
records in the tap as one chunk, under the same rules (flow, active partitions, seeks, read offset, gaps), and
the agent acknowledges a processed chunk by offsets (``ack_chunk``) unless its partition was sought since.

The re-read of a hole (second fix) stays as the last resort: it applies the hole after the records that
followed it, which the reconciler's window counts do not expect, so it logs a warning.

Used for ``kafka://`` and ``aiokafka://`` (see ``dqhash.app.App``) and, through ``dqhash.internals.tansu``, for the
embedded broker.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as stock
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from dqhash.core.timeutil import lease_clock
from dqhash.kafka.taps import Chunk, Tap

log = logging.getLogger(__name__)

#: a re-read whose first record has not come back after this long is sought again (a rebalance, a lost seek)
REREAD_RETRY_S = 15.0


def uncommitted(committed: Mapping) -> list:
    """Partitions whose committed offset does not move the fetch position (none, or 0)."""
    return [tp for tp, offset in committed.items() if offset is None or offset <= 0]


#: a partition's seeks so far and where the last one went (None: a reset, resolved by the broker)
Seeks = tuple[int, "int | None"]


def seek_count(seeks: Mapping[TP, Seeks], tp: TP) -> int:
    return seeks.get(tp, (0, None))[0]


def is_stale(consumer, message) -> bool:
    """See ``Consumer.is_stale``; False with a consumer of another transport."""
    check = getattr(consumer, "is_stale", None)
    return check is not None and check(message)


def count_seeks(fetcher, seeks: dict) -> None:
    """Counts every seek and reset of each partition in ``seeks``, in the same step as aiokafka moves it.

    The count a fetched batch was read under tells, later, whether its partition was sought since.
    """
    if getattr(fetcher, "_dqhash_counts_seeks", False):
        return
    seek_to, request_offset_reset = fetcher.seek_to, fetcher.request_offset_reset

    def counted_seek_to(tp, offset):
        seeks[tp] = (seek_count(seeks, tp) + 1, offset)
        return seek_to(tp, offset)

    def counted_reset(tps, strategy):
        for tp in tps:
            seeks[tp] = (seek_count(seeks, tp) + 1, None)
        return request_offset_reset(tps, strategy)

    fetcher.seek_to, fetcher.request_offset_reset = counted_seek_to, counted_reset
    fetcher._dqhash_counts_seeks = True


#: called, in the consumer's thread, with (send time on ``lease_clock``, generation) of each heartbeat answered
HeartbeatListener = Callable[[float, int], None]


def report_heartbeats(coordinator, listeners: list[HeartbeatListener]) -> None:
    """Tells ``listeners`` of every heartbeat the group coordinator answered, with the time it was sent.

    aiokafka keeps its heartbeats to itself; the worker's ownership lease (``dqhash.core.lease``) is
    renewed by them. An answer of REBALANCE_IN_PROGRESS counts (aiokafka's own rule: still a member
    until the rebalance decides).
    """
    if getattr(coordinator, "_dqhash_reports_heartbeats", False):
        return
    beat = coordinator._do_heartbeat

    async def reported_heartbeat():
        sent_at, generation = lease_clock(), coordinator.generation
        answered = await beat()
        if answered:
            for listener in listeners:
                listener(sent_at, generation)
        return answered

    coordinator._do_heartbeat = reported_heartbeat
    coordinator._dqhash_reports_heartbeats = True


class RewindingConsumerThread(stock.AIOKafkaConsumerThread):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: per partition: how often it was sought, and where to (written in this thread only)
        self.seeks: dict[TP, Seeks] = {}
        #: ``seeks`` as it was when the last batch was fetched
        self.fetched_seeks: Mapping[TP, Seeks] = {}

    async def on_start(self) -> None:
        await super().on_start()  # creates and starts aiokafka's consumer, and with it its fetcher
        count_seeks(self._consumer._fetcher, self.seeks)
        coordinator = getattr(self._consumer, "_coordinator", None)
        if coordinator is not None and hasattr(coordinator, "_do_heartbeat"):
            report_heartbeats(coordinator, self.consumer.heartbeats)

    async def _fetch_records(self, consumer, active_partitions, timeout=None, max_records=None):
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        self.fetched_seeks = dict(self.seeks)  # same step as aiokafka handed the records over: no seek between
        return records

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's livelock check reads aiokafka's position of ``tp``, which asserts that one exists. A partition
        awaiting its reset after a rejoin has none: when a broker went down for longer than the session timeout,
        the check's AssertionError crashed the consumer and the worker died. Such a partition is checked once it
        has a position again."""
        state = self._ensure_consumer()._fetcher._subscriptions.subscription.assignment.state_value(
            TopicPartition(tp.topic, tp.partition)
        )
        if state is None or not state.has_valid_position:
            return None
        return super().verify_event_path(now, tp)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed_or_reset)

    async def _seek_to_committed_or_reset(self) -> Mapping[TP, int]:
        """Committed offsets; for a partition without one, where the reset put it (the first offset to process)."""
        consumer = self._ensure_consumer()
        committed = dict(await consumer.seek_to_committed())
        # changelog partitions are never committed: Faust's recovery positions them itself
        changelogs = self.app.tables.changelog_topics
        fresh = [tp for tp in uncommitted(committed) if tp.topic not in changelogs]
        if fresh:
            await reset_to_policy(consumer, fresh, self.app.conf.consumer_auto_offset_reset)
            for tp in fresh:
                committed[tp] = await consumer.position(tp)
        return committed

    async def seek_in_thread(self, tp: TP, offset: int) -> None:
        await self.call_thread(self._seek, tp, offset)

    async def _seek(self, tp: TP, offset: int) -> None:
        self._ensure_consumer().seek(tp, offset)

    async def seek_if_unmoved(self, tp: TP, offset: int, seeks: int) -> None:
        """Seeks only if the partition was not sought since its ``seeks``-th seek (decided in this thread)."""
        await self.call_thread(self._seek_if_unmoved, tp, offset, seeks)

    async def _seek_if_unmoved(self, tp: TP, offset: int, seeks: int) -> None:
        if seek_count(self.seeks, tp) == seeks:
            await self._seek(tp, offset)


async def reset_to_policy(consumer: AIOKafkaConsumer, partitions: list, policy: str) -> None:
    if policy == "latest":
        await consumer.seek_to_end(*partitions)
    else:
        await consumer.seek_to_beginning(*partitions)
    log.debug("no committed offset: %s reset to %s", partitions, policy)


def committable(acked: list[int], start: int) -> int:
    """How many of the sorted ``acked`` offsets continue ``start`` (the committed offset) without a hole."""
    count = 0
    for offset in acked:
        if offset != start + count:
            break
        count += 1
    return count


class Consumer(stock.Consumer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: where each assigned partition is read from, once the seek after an assignment said so
        self._starts: dict[TP, int] = {}
        #: partitions sought back to re-read a hole: the hole's first offset, and when the seek was asked for
        self._rereads: dict[TP, tuple[int, float]] = {}
        #: the thread's seek counts for the batch being handed out, and for the records handed out last
        self._fetched_seeks: Mapping[TP, Seeks] = {}
        self._handed_seeks: dict[TP, int] = {}
        #: the batch Faust's ``getmany`` is handing out, as aiokafka returned it
        self._fetched: Mapping[TP, list] = {}
        #: topic → the tap its agent reads (``dqhash.kafka.taps``): its records skip Faust's per-record path
        self.taps: dict[str, Tap] = {}
        #: partition → offset of the last record of this fetch handed to a tap
        self._tapped: dict[TP, int] = {}
        #: told of each heartbeat the coordinator answered (``report_heartbeats``), in the consumer's thread
        self.heartbeats: list[HeartbeatListener] = []

    def _new_consumer_thread(self) -> RewindingConsumerThread:
        return RewindingConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit: the committed one, extended by the acknowledged records that follow it.

        Faust's gaps (offsets a fetch skipped: compacted away, transaction markers) count as acknowledged,
        as in Faust. Each partition is processed in order, so a hole before acknowledged records is a
        record that was read and will never be processed: it is read again.
        """
        acked = self._acked[tp]
        if not acked:
            return None
        _fill_gaps(self._gap[tp], acked)
        acked.sort()
        start = self._committed_offset[tp]
        if start is None:
            start = self._starts.get(tp)
        if start is None:  # assigned, not yet sought: records already read cannot be judged yet
            return None
        stale = bisect.bisect_left(acked, start)  # acknowledged again after a rewind: already committed
        count = committable(acked[stale:], start)
        done = acked[: stale + count]
        acked[: stale + count] = []
        self._acked_index[tp].difference_update(done)
        if count:
            self._rereads.pop(tp, None)
            return start + count
        if acked:
            self._reread(tp, start, acked[0])
        return None

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Also remembers where each assigned partition is read from: the start a commit must continue."""
        committed = await super().seek_to_committed()
        self._starts = {tp: offset or 0 for tp, offset in committed.items()}
        return committed

    async def on_partitions_revoked(self, revoked) -> None:
        self._starts = {}  # Faust revokes every partition on a rebalance; the next seek says where each starts
        self._rereads.clear()  # and reads each from its committed offset again
        for tap in set(self.taps.values()):  # unprocessed, unacknowledged: read again after the rebalance
            tap.clear()
        await super().on_partitions_revoked(revoked)

    def _reread(self, tp: TP, start: int, acked_from: int) -> None:
        pending = self._rereads.get(tp)
        if pending is not None and time.monotonic() - pending[1] < REREAD_RETRY_S:
            return
        log.warning(
            "%s: offsets %d to %d were read and not processed (skipped during a rebalance?); "
            "reading them again, after the records that followed them (window totals may miss them)",
            tp,
            start,
            acked_from - 1,
        )
        self._rereads[tp] = (start, time.monotonic())

        async def seek_back() -> None:
            try:
                # not Faust's ``seek``: it calls aiokafka from this thread, not the consumer's (the fetcher
                # then never woke: a partition stalled in a CI run)
                await self._thread.seek_in_thread(tp, start)
            except Exception:  # a rebalance took the partition meanwhile: the new owner reads from the commit
                log.warning("%s: could not seek back to %d", tp, start, exc_info=True)
                self._rereads.pop(tp, None)

        asyncio.ensure_future(seek_back())

    def is_stale(self, message) -> bool:
        """Fetched before the last seek of its partition: it is read again from where the seek went.

        Applying it would apply a partition's records out of order (the reconciler's applied offsets and
        window counts assume each partition is applied in order).
        """
        fetched = getattr(message, "seeks", None)
        return fetched is not None and fetched != seek_count(self._thread.seeks, message.tp)

    def ack(self, message) -> bool:
        """Does not count a record that was not processed, or whose partition was sought since.

        Faust's stream acknowledges, unprocessed, the records it skips because they were fetched in an
        earlier generation or while flow was stopped (a rebalance); the agents acknowledge stale records
        unprocessed. Counted, they are committed past and, if the worker dies before reading them again,
        lost. Not counted, they hold the commit until read again. A skipped record is one no stream took
        (``tracked``).
        """
        if self.is_stale(message) or (
            not message.tracked
            and (message.generation_id != self.app.consumer_generation_id or not self.app.flow_control.is_active())
        ):
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)  # ``wait_empty`` waits for the stream to be done with it
            return False
        return super().ack(message)

    async def _wait_next_records(self, timeout: float):
        records, active = await super()._wait_next_records(timeout)
        self._fetched_seeks = self._thread.fetched_seeks
        self._fetched = records or {}
        self._tapped = {}
        if records and self.taps:
            records = await self._hand_to_taps(records, active)
        return records, active

    # --- taps: whole fetched batches straight to the agents (dqhash.kafka.taps) ----------------------------

    async def _hand_to_taps(self, records: Mapping[TP, list], active) -> dict[TP, list]:
        """Puts each tapped partition's records in its tap as one chunk; returns the rest, for Faust.

        The same rules as Faust's ``getmany`` and drain loop, once per partition instead of per record:
        nothing while the flow is stopped or for a partition not active (those records are sought back
        to, see ``_seek_back_to_dropped``), nothing fetched before the partition's last seek (stale), no
        record below the read offset, and offsets missing from the log recorded as gaps.
        """
        rest: dict[TP, list] = {}
        taps, generation = self.taps, self.app.consumer_generation_id
        filled: set[Tap] = set()
        for tp, batch in records.items():
            tap = taps.get(tp.topic)
            if tap is None:
                rest[tp] = batch
                continue
            if not (batch and self.flow_active and (active is None or tp in active or tp in self._buffered_partitions)):
                continue
            seeks = seek_count(self._fetched_seeks, tp)
            if seeks != seek_count(self._thread.seeks, tp):
                continue  # sought since it was fetched: read again from where the seek went
            batch = self._continue_reading(tp, batch, seeks)
            if not batch:
                continue
            tap.put(Chunk(tp, batch, seeks, generation))
            self._tapped[tp] = batch[-1].offset
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            filled.add(tap)
        for tap in filled:  # backpressure, once per fetch: a rebalance does not wait for the agent
            if tap.full:
                await self.wait_first(tap.wait_space(), self.suspend_flow.wait())
        return rest

    def _continue_reading(self, tp: TP, batch: list, seeks: int) -> list:
        """The records of ``batch`` past the partition's read offset; records the gaps before and between them."""
        self._read_from(tp, seeks)
        read = self._read_offset[tp]
        if read is not None and batch[0].offset < read:
            batch = [record for record in batch if record.offset >= read]  # Faust's drain loop: ">=" passes
            if not batch:
                return batch
        if self.app.topics.acks_enabled_for(tp.topic):
            expected = read + 1 if read is not None else batch[0].offset
            if batch[-1].offset - expected != len(batch) - 1:  # some offset is missing from the log
                self._add_gaps(tp, expected, batch)
        self._read_offset[tp] = batch[-1].offset
        return batch

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Faust's drain loop calls this for the offsets missing between its read offset and the record at
        ``offset_to``; recorded by dqhash's rule (:meth:`_gap_before`), not Faust's."""
        self._gap_before(tp, offset_from, offset_to)

    def _add_gaps(self, tp: TP, expected: int, batch: list) -> None:
        """The taps' path: the offsets missing before and between the records, by the same rule."""
        for record in batch:
            self._gap_before(tp, expected, record.offset)
            expected = record.offset + 1
        self._gap[tp].merge_overlaps()

    def _gap_before(self, tp: TP, first: int, record_offset: int) -> None:
        """Offsets from ``first`` up to the record at ``record_offset`` are missing from the log (compacted away,
        control records): they count as acknowledged. From the committed offset on: Faust's own rule starts one
        past it, so a partition whose next offset is missing from the log could never be committed past it. And
        never the record itself: Faust's counts it, so a commit could pass it before it is processed."""
        committed = self._committed_offset[tp]
        begin = first if committed is None else max(first, committed)
        if begin < record_offset:
            self._gap[tp].addi(begin, record_offset)  # the interval excludes its end: the record is not a gap

    def is_current(self, chunk: Chunk) -> bool:
        """Still to be applied: not sought since, same generation, flow running (not rebalancing)."""
        return (
            chunk.seeks == seek_count(self._thread.seeks, chunk.tp)
            and chunk.generation == self.app.consumer_generation_id
            and self.flow_active
        )

    def ack_chunk(self, chunk: Chunk) -> int:
        """Counts a processed chunk's records as acknowledged (``Consumer.ack`` for each, in one step).

        Not if its partition was sought since it was fetched: it is read again from where the seek went.
        """
        tp = chunk.tp
        if chunk.seeks != seek_count(self._thread.seeks, tp) or not self.app.topics.acks_enabled_for(tp.topic):
            return 0
        committed = self._committed_offset[tp]
        acked_index, acked = self._acked_index[tp], self._acked[tp]
        count = 0
        with ack_lock:
            for record in chunk.records:
                offset = record.offset
                if (committed is None or offset >= committed) and offset not in acked_index:
                    acked_index.add(offset)
                    acked.append(offset)
                    count += 1
            self._n_acked += count
        notify(self._waiting_for_ack)
        return count

    def _to_message(self, tp: TP, record):
        message = super()._to_message(tp, record)
        message.seeks = seek_count(self._fetched_seeks, tp)
        return message

    def getmany(self, timeout: float) -> AsyncIterator:
        return self._in_seek_order(super().getmany(timeout))

    async def _in_seek_order(self, records: AsyncIterator) -> AsyncIterator:
        """Hands on only records fetched since their partition's last seek, and sets the read offset Faust's
        drain loop compares to where each seek went.

        Faust's drain loop otherwise kept handing out records fetched before a seek back, raised its read
        offset past the sought offset with each, and dropped the re-fetched records as already read: a
        hole, and the records after it applied first (3 MATCH missing from the window totals in a kill -9
        run). Set to one below the sought offset, a first record further on is recorded as a gap (offsets
        the log no longer has), not a hole.
        """
        self._fetched = {}
        last_handed: dict[TP, int] = {}
        async for tp, message in records:
            if self.is_stale(message):
                continue
            last_handed[tp] = message.offset
            self._read_from(tp, message.seeks)
            yield tp, message
        self._seek_back_to_dropped({**last_handed, **self._tapped})

    def _read_from(self, tp: TP, seeks: int) -> None:
        """At the first record handed out since a seek, the read offset becomes one below where it went."""
        if self._handed_seeks.get(tp) != seeks:
            self._handed_seeks[tp] = seeks
            sought = self._fetched_seeks.get(tp, (0, None))[1]  # set by this batch's fetch
            self._read_offset[tp] = sought - 1 if sought is not None else None

    def _seek_back_to_dropped(self, last_handed: Mapping[TP, int]) -> None:
        """Faust's ``getmany`` stops handing out a batch when the flow stops or the generation changes, yet
        aiokafka's position is past it: unless a seek follows, those records are never read again (the
        first record of a taken-over partition, processed by no one, in a kill -9 run). Seeks back to them.
        """
        for tp, batch in self._fetched.items():
            if not batch or last_handed.get(tp, -1) >= batch[-1].offset:
                continue
            seeks = seek_count(self._fetched_seeks, tp)
            if seek_count(self._thread.seeks, tp) != seeks:
                continue  # sought since (stale records): that seek says where the partition is read from
            first = next(record.offset for record in batch if record.offset > last_handed.get(tp, -1))
            log.info(
                "%s: offsets %d to %d were fetched and not handed out (flow stopped); seeking back to them",
                tp,
                first,
                batch[-1].offset,
            )
            asyncio.ensure_future(self._seek_back_quietly(tp, first, seeks))

    async def _seek_back_quietly(self, tp: TP, offset: int, seeks: int) -> None:
        try:  # a seek since (Faust's own, after a rebalance) has already put the partition where it must be
            await self._thread.seek_if_unmoved(tp, offset, seeks)
        except Exception:  # the partition was revoked meanwhile: its new owner reads from the commit
            log.debug("%s: not sought back to %d", tp, offset, exc_info=True)


def _fill_gaps(gaps, acked: list[int]) -> None:
    """Faust's own step: offsets of recorded gaps up to the newest acknowledged one count as acknowledged."""
    if not gaps:
        return
    newest = max(acked)
    spans = sorted(gaps.overlap(0, newest), key=lambda span: span.begin)
    if spans:
        filled = [offset for span in spans for offset in range(span.begin, span.end)]
        acked.extend(filled)
        gaps.chop(0, max(filled[-1], newest + 1))


class Transport(stock.Transport):
    Consumer = Consumer
