"""topic → parse → table → reconcile → outputs, for one worker's partitions.

The Faust agents hand each batch here and produce what comes back; the engine does no network I/O and
takes its table through small ports (``dqhash.engine.ports``), so it runs the same against Faust's
RocksDB tables and a dict in a test. Everything a record reads or writes belongs to its own partition,
which is what Faust's tables require.

This module is the batch loop and the router between the parts, one job each:
``routing`` (re-keying), ``pair_updates`` (dedup and classification state), ``window_book`` (window
accounting), ``expiry``, ``takeover`` (rebuild and republishing) and ``dead_letters``.

Records come in batches (:meth:`Reconciler.process`): each record is applied on its own, exactly as if it
were alone, against a :class:`~dqhash.engine.staged.StagedTable`; the batch's writes are made once per
key at the end. A batch is the unit of work Faust acknowledges, so a crash replays whole batches, and the
per-source offsets kept in pair and window records make a replayed record count nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from dqhash.core import classify
from dqhash.core.contracts import parse_cloud, parse_onprem, tombstone_event
from dqhash.core.deadlines import DeadlineIndex
from dqhash.core.input_records import CloudHash, OnPremEvent, ProgressMarks, Reason, Rejection, SnapshotEnd
from dqhash.core.pair_state import Rules
from dqhash.core.records import SOURCE_CLOUD, SOURCE_ONPREM, SOURCE_REKEY, SOURCE_TICK, Input, Out
from dqhash.core.ticks import tick_horizon
from dqhash.core.timeutil import now_ms
from dqhash.core.windows import WindowSpec
from dqhash.core.wire import DECODE_MESSAGE, DECODE_REASON
from dqhash.engine.dead_letters import DeadLetters, processing_error
from dqhash.engine.effects import Effects
from dqhash.engine.expiry import Expiry
from dqhash.engine.failure_caps import FailureCaps
from dqhash.engine.pair_updates import PairUpdates
from dqhash.engine.pending_refill import PendingRefill
from dqhash.engine.ports import Clock, Horizon, MetricsSink, PointRead, Scan, Table, Writer
from dqhash.engine.reverify import Reverifier
from dqhash.engine.routing import CLOUD, ONPREM, SIDE_HEADER, Routing, forwarded_from
from dqhash.engine.snapshot_book import SnapshotBook
from dqhash.engine.staged import StagedTable, mapping_writer
from dqhash.engine.takeover import Takeover
from dqhash.engine.verified import VerifiedBook
from dqhash.engine.window_book import WindowBook
from dqhash.settings import Settings

log = logging.getLogger(__name__)

#: Due deadlines decided per tick and partition: a backlog (the cloud side lagging for a while) is swept over
#: several ticks in bounded batches, its windows left open until their last deadline is decided.
SWEEP_BATCH = 5_000


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        pairs: Table,
        metrics: MetricsSink,
        scan: Scan,
        clock: Clock = now_ms,
        horizon: Horizon | None = None,
        read: PointRead | None = None,
        write: Writer | None = None,
    ) -> None:
        self.settings = settings
        self.rules = Rules(
            WindowSpec(settings.window_ms, settings.grace_ms),
            settings.retention_ms,
            lookups=settings.lookups,
            lookup_delay_ms=settings.lookup_delay_ms,
            rechecks=settings.rechecks,
            recheck_backoff_ms=settings.recheck_backoff_ms,
            answer_wait_ms=settings.answer_wait_ms,
            verify_deletes=settings.verify_deletes,
        )
        self.pairs = pairs
        #: (partition, key) → value: a point read that skips the mapping layers of a Faust table
        self.read: PointRead = read or (lambda partition, key: pairs.get(key))
        #: writes a batch's keys of one partition; returns records to produce (the table's changelog)
        self.write: Writer = write or mapping_writer(pairs)
        self.metrics = metrics
        self.scan = scan
        self.clock = clock
        #: (partition, now) → the time up to which deadlines may be swept: ``now`` unless the partition's
        #: inputs (either side) lag, then their watermark (see agents.reconciler.sweep_horizon)
        self.horizon: Horizon = horizon or (lambda partition, now: now)
        #: pending pairs a partition keeps in memory (a worker may own every partition)
        in_memory = max(1_024, settings.pending_in_memory // settings.partitions)
        self.index = DeadlineIndex(resolution_ms=max(50, int(settings.tick_seconds * 1000)), capacity=in_memory)
        self.routing = Routing(settings.partitions, settings.rekey_topic)
        #: every table this worker proves (docs/catalog.md)
        self.catalog = settings.catalog
        self.windows = WindowBook(
            settings.metrics_topic,
            settings.window_ms,
            settings.grace_ms,
            settings.retention_ms,
            metrics,
            self.catalog.default,
            FailureCaps(self.catalog, settings.partitions),
        )
        self.snapshots = SnapshotBook(settings.snapshot_topic, pairs, scan, self.rules, clock)
        self.updates = PairUpdates(
            self.rules,
            settings.audit_topic,
            settings.repair_topic,
            settings.lookup_topic,
            self.index,
            self.windows,
            metrics,
            clock,
            self.snapshots,
            self.catalog.default,
        )
        self.expiry = Expiry(pairs, scan, self.rules, metrics)
        self.reverifier = Reverifier(
            pairs,
            scan,
            self.rules,
            settings.reverify_rows_per_second,
            settings.partitions,
            settings.reverify_min_age_ms,
            clock,
        )
        #: each table's verified-through time per partition (``core.progress``)
        self.verified = VerifiedBook(self.catalog.default, settings.metrics_topic, metrics, in_memory)
        self.refill = PendingRefill(pairs, scan, self.index, self.verified)
        self.takeover = Takeover(
            pairs, scan, self.index, self.windows, self.expiry, self.updates, self.snapshots, self.verified
        )
        self.dead_letters = DeadLetters(settings.dlq_topic, self.rules.windows, metrics, clock)
        self._sources = {
            settings.onprem_topic: SOURCE_ONPREM,
            settings.cloud_topic: SOURCE_CLOUD,
            settings.rekey_topic: SOURCE_REKEY,
        }
        #: the batch being processed (see :meth:`process`)
        self._staged: StagedTable | None = None

    # --- batches ---------------------------------------------------------------------------

    def process(self, inputs: Iterable[Input]) -> list[Out]:
        """Apply a batch of records and return what to produce: the table's changelog records first.

        Ticks go after the batch's data records: a sweep must see the cloud hashes read with it.
        A record that fails unexpectedly is dead-lettered (PROCESSING_ERROR) and the batch goes on.
        """
        staged = self._staged = StagedTable(self.read, self.write)
        outs: list[Out] = []
        ticks: list[Input] = []
        try:
            with self.metrics.batch():
                for record in inputs:
                    if record.source == SOURCE_TICK:
                        ticks.append(record)
                    else:
                        outs.extend(self._guarded(staged, record))
                for record in ticks:
                    outs.extend(self._guarded(staged, record))
        finally:
            self._staged = None
        return staged.flush() + outs

    def _guarded(self, staged: StagedTable, record: Input) -> list[Out]:
        try:
            if record.source == SOURCE_TICK:
                return self._on_tick(staged, record.partition, record.offset, record.value)
            if record.source == SOURCE_REKEY:
                return self._on_rekeyed(staged, record)
            return self._on_input(staged, ONPREM if record.source == SOURCE_ONPREM else CLOUD, record)
        except Exception as exc:  # one bad record must never stop the batch, nor the worker
            log.exception(
                "error processing %s[%d]@%d; dead-lettering it", record.topic, record.partition, record.offset
            )
            return [
                self.dead_letter_error(
                    exc, record.topic, record.partition, record.offset, record.key, record.value, record.headers
                )
            ]

    # --- one record at a time, as a batch of one (tests, benchmarks) ------------------------

    def on_input(
        self,
        side: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> list[Out]:
        """A record from Topic-1 (``side=onprem``) or Topic-2 (``side=cloud``) as a batch of one."""
        source = SOURCE_ONPREM if side == ONPREM else SOURCE_CLOUD
        return self.process([Input(source, topic, partition, offset, key, value, _seq(headers), timestamp_ms)])

    def on_rekeyed(
        self,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None,
        timestamp_ms: int | None = None,
    ) -> list[Out]:
        """A record forwarded to its PK's partition, as a batch of one."""
        return self.process(
            [Input(SOURCE_REKEY, self.settings.rekey_topic, partition, offset, key, value, _seq(headers), timestamp_ms)]
        )

    def on_tick(self, partition: int, offset: int) -> list[Out]:
        """A tick of one partition, as a batch of one (see :meth:`_on_tick`)."""
        return self.process([Input(SOURCE_TICK, self.settings.tick_topic, partition, offset)])

    # --- the three kinds of input -------------------------------------------------------

    def _on_input(self, staged: StagedTable, side: str, record: Input) -> list[Out]:
        source, topic, partition, offset, key, value, headers, timestamp_ms = record
        if value and value[0] == 0:  # Confluent's wire format, left undecoded: its headers say why
            effects = Effects(partition, source, offset)
            out = self.dead_letters.reject(effects, undecoded(headers), topic, key, value, headers, timestamp_ms)
            return self._apply_effects(staged, effects, [out])
        if value is None and side == ONPREM and self.settings.onprem_tombstones == "delete":
            made = tombstone_event(key, partition, offset, timestamp_ms)
            if not isinstance(made, Rejection):
                value = made  # the DELETE it stands for, forwarded as such if its PK lives elsewhere
        parsed = self._parse(side, value)
        effects = Effects(partition, source, offset)
        if isinstance(parsed, Rejection):
            out = self.dead_letters.reject(effects, parsed, topic, key, record.value, headers, timestamp_ms)
            return self._apply_effects(staged, effects, [out])
        if isinstance(parsed, SnapshotEnd):  # written to each partition by the side's publisher
            self.snapshots.note_end(effects, side, parsed)
            return self._apply_effects(staged, effects, [])
        if isinstance(parsed, ProgressMarks):  # written to each partition by a producer that reads in commit order
            self.verified.note(partition, parsed.marks)
            return []
        home = self.routing.home(parsed.pk)
        if home != partition:
            return [self.routing.forward(side, parsed.pk, home, partition, offset, value, headers)]
        return self._apply_effects(
            staged, effects, self.updates.apply(staged, effects, side, parsed, topic, timestamp_ms)
        )

    def _on_rekeyed(self, staged: StagedTable, record: Input) -> list[Out]:
        _, rekey_topic, partition, offset, key, value, headers, timestamp_ms = record
        side, origin = forwarded_from(headers)
        effects = Effects(partition, SOURCE_REKEY, offset, origin)
        topic = self.settings.onprem_topic if side == ONPREM else self.settings.cloud_topic
        parsed = (
            self._parse(side, value)
            if side in (ONPREM, CLOUD)
            else Rejection(Reason.PROCESSING_ERROR, f"re-keyed record without a valid {SIDE_HEADER} header")
        )
        if isinstance(parsed, Rejection):
            out = self.dead_letters.reject(effects, parsed, rekey_topic, key, value, headers, timestamp_ms)
            return self._apply_effects(staged, effects, [out])
        if isinstance(parsed, (SnapshotEnd, ProgressMarks)):  # never forwarded: one that was belongs to no partition
            reason = Rejection(Reason.PROCESSING_ERROR, "a snapshot end or progress mark came through the re-key topic")
            out = self.dead_letters.reject(effects, reason, rekey_topic, key, value, headers, timestamp_ms)
            return self._apply_effects(staged, effects, [out])
        return self._apply_effects(
            staged, effects, self.updates.apply(staged, effects, side, parsed, topic, timestamp_ms)
        )

    def _on_tick(self, staged: StagedTable, partition: int, offset: int, value: bytes | None = None) -> list[Out]:
        """Sweep the partition's due deadlines (at most SWEEP_BATCH), expire settled state, close due windows.

        ``offset`` is the tick record's own, so a tick redelivered after a crash counts nothing twice; ``value``
        carries its sender's horizon, so that it sweeps no further when read again (``core.ticks``).
        Deadlines and windows are swept only up to the horizon: a cloud hash still unread in Kafka
        (consumer lag) must not turn into a false MISSING_CLOUD, nor an on-prem event still unread into a false
        MISMATCH (the horizon covers Topic-1 too; a problem verdict resting on a cloud observation at C is given
        once the horizon passes C + grace: ``comparison.unread_until``).
        """
        now = self.clock()
        horizon = min(now, self.horizon(partition, now))
        stamped = tick_horizon(value)
        if stamped is not None:  # every reading of this tick sweeps as far as its sender saw, at most
            horizon = min(horizon, stamped)
        effects = Effects(partition, SOURCE_TICK, offset)
        outs: list[Out] = []
        for pk in self.index.pop_due(partition, horizon, SWEEP_BATCH):
            key = pk.encode()
            state = staged.state(partition, key)
            if state is None:
                continue
            step = classify.on_deadline(state, now, self.rules, horizon)
            outs.extend(self.updates.record_step(effects, pk, key, state, step))
        outs.extend(self.snapshots.sweep(staged, effects, self.updates, horizon))
        outs.extend(self.reverifier.sweep(staged, effects, self.updates))
        self._apply_effects(staged, effects, outs)
        self.refill.sweep(staged, partition)  # pending pairs memory let go of, read again when few are left
        self.expiry.sweep(staged, partition, now)
        left = self.index.next_due(partition)  # deadlines due but left for the next tick (SWEEP_BATCH)
        closing = min(horizon, left - 1) if left is not None and left <= horizon else horizon
        outs.extend(self.windows.close_due(staged, partition, now, closing))
        outs.extend(self.snapshots.publish_due(staged, partition))
        outs.extend(self.verified.publish_due(partition, now))
        return outs

    def _parse(
        self, side: str, value: bytes | None
    ) -> OnPremEvent | CloudHash | SnapshotEnd | ProgressMarks | Rejection:
        parse = parse_onprem if side == ONPREM else parse_cloud
        return parse(value, self.settings.hash_strategy, self.catalog)

    def _apply_effects(self, staged: StagedTable, effects: Effects, outs: list[Out]) -> list[Out]:
        """Fold the record's counts into its windows, then write the pairs it changed."""
        self.windows.fold(staged, effects)
        if effects.snapshot_events:
            self.snapshots.fold(staged, effects)
        partition = effects.partition
        for key, pk, state in effects.writes:
            staged.put_state(partition, key, state)
            self.verified.track(partition, pk, state)  # the pk the deadline index holds too: one string for both
        return outs

    # --- dead letters, partitions -------------------------------------------------------

    def dead_letter_error(
        self,
        exc: BaseException,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None,
    ) -> Out:
        """An unexpected error while processing one record: dead-letter it and carry on.

        Counted in the batch being processed, if any (outside a batch there is no table to write).
        """
        effects = Effects(partition, self._sources.get(topic, SOURCE_TICK), offset)
        out = self.dead_letters.reject(effects, processing_error(exc), topic, key, value, headers, None)
        if self._staged is not None:
            try:
                self._apply_effects(self._staged, effects, [])
            except Exception:  # the table itself failing: the record still reaches the DLQ, uncounted
                log.exception("could not count the dead-lettered record %s[%d]@%d", topic, partition, offset)
        return out

    def rebuild(self, partitions: Iterable[int]) -> list[Out]:
        """See :meth:`Takeover.rebuild`."""
        return self.takeover.rebuild(partitions)

    def forget(self, partition: int) -> None:
        """Drop derived state of a partition that moved away; the new owner rebuilds it."""
        self.takeover.forget(partition)
        self.reverifier.forget(partition)
        self.refill.forget(partition)


def undecoded(headers: Sequence[tuple[str, bytes]] | None) -> Rejection:
    """Why a wire-format record was not decoded (``dqhash.kafka.schema_registry``), as its rejection."""
    found = dict(headers or ())
    reason = found.get(DECODE_REASON)
    if reason is None:
        return Rejection(
            Reason.UNDECODABLE,
            "Confluent wire format (Schema Registry) and no registry is configured: set DQHASH_SCHEMA_REGISTRY_URL",
        )
    return Rejection(Reason(reason.decode()), found.get(DECODE_MESSAGE, b"").decode(errors="replace"))


def _seq(headers: Iterable[tuple[str, bytes]] | None) -> Sequence[tuple[str, bytes]] | None:
    return headers if headers is None or isinstance(headers, (list, tuple)) else list(headers)
