"""Dedup and classification state: one fact about a PK → its new pair state, verdicts and lookups.

The rules themselves are pure (``dqhash.core.classify``); here they meet the table: a redelivered record
is recognised by the offsets a pair remembers per source, the new state is queued as the record's write,
its deadline is indexed, and its verdicts become audit and repair records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dqhash.core import classify, pair_state
from dqhash.core.deadlines import DeadlineIndex
from dqhash.core.input_records import CloudHash, OnPremEvent
from dqhash.core.jsontext import dumps_kept
from dqhash.core.lookups import encode_request
from dqhash.core.outputs import REPAIRABLE, audit_record, repair_request
from dqhash.core.pair_state import PairState, Rules, Step
from dqhash.core.records import SOURCE_TICK, Out
from dqhash.core.table_keys import table_prefix
from dqhash.core.tally import counter
from dqhash.core.tuples import build
from dqhash.engine.effects import Effects
from dqhash.engine.failure_caps import SUSPENDED
from dqhash.engine.ports import Clock, MetricsSink
from dqhash.engine.routing import ONPREM
from dqhash.engine.snapshot_book import SnapshotBook
from dqhash.engine.staged import StagedTable
from dqhash.engine.window_book import WindowBook

#: Re-keyed origins remembered per pk (a redelivery re-forwarded later than this is counted as a replay).
ORIGINS_KEPT = 8
#: Verdicts kept per pk for inspection (/dq/pairs/{pk}).
HISTORY = 5
#: Verdicts stay in a pk's outbox this long: ten times Faust's commit interval (1 s). Faust flushes the
#: producer before it commits, so a verdict older than the last commit has reached the audit topic; only
#: the outputs of a partition's last moments before a crash can be in the changelog and not in Kafka.
OUTBOX_MS = 10_000


class PairUpdates:
    def __init__(
        self,
        rules: Rules,
        audit_topic: str,
        repair_topic: str,
        lookup_topic: str,
        index: DeadlineIndex,
        windows: WindowBook,
        metrics: MetricsSink,
        clock: Clock,
        snapshots: SnapshotBook,
        default_table: str = "",
    ) -> None:
        self.rules, self.index, self.windows, self.metrics, self.clock = rules, index, windows, metrics, clock
        #: the table of bare pair keys (``core.table_keys``): how audit records and counters name it
        self.default_table = default_table
        #: the tables' failure caps (kept with the window counts they are read from)
        self.caps = windows.caps
        self.snapshots = snapshots
        self.audit_topic, self.repair_topic, self.lookup_topic = audit_topic, repair_topic, lookup_topic

    def apply(
        self,
        staged: StagedTable,
        effects: Effects,
        side: str,
        record: OnPremEvent | CloudHash,
        topic: str,
        timestamp_ms: int | None,
    ) -> list[Out]:
        """A parsed input record in its PK's partition."""
        now = self.clock()
        windows = self.rules.windows
        prefix = table_prefix(record.pk)
        if (
            self.caps.capped
            and record.snapshot_id is None
            and self.caps.suspended(effects.partition, prefix[:-1] or self.default_table)
        ):
            # counted, not compared (a redelivery counts nothing twice: the window remembers its offsets); a
            # snapshot run's rows are exempt: a run someone started must complete, and proves the whole table
            effects.count(windows.start(timestamp_ms or now), counter(prefix, SUSPENDED))
            return []
        key = record.pk.encode()
        state = staged.state(effects.partition, key)
        if state is not None and (effects.offset <= state.applied[effects.source] or effects.origin in state.origins):
            return []  # redelivered after a crash or rebalance (or forwarded again): already applied and counted
        if side == ONPREM:
            step = classify.on_onprem(state, record, now, self.rules)  # type: ignore[arg-type]
            if step.duplicate:
                effects.count(windows.start(record.event_ts), counter(prefix, "DUPLICATES"))  # type: ignore[union-attr]
        else:
            step = classify.on_cloud(state, record, now, self.rules)  # type: ignore[arg-type]
            if step.stale_cloud:
                self.metrics.stale_cloud()
                effects.count(windows.start(timestamp_ms or now), counter(prefix, "STALE_CLOUD"))
            if step.duplicate:
                effects.count(windows.start(record.cloud_ts), counter(prefix, "DUPLICATES"))  # type: ignore[union-attr]
            if step.reverified:
                self.metrics.reverified()
                effects.count(windows.start(now), counter(prefix, "REVERIFIED"))
        if step.duplicate:
            self.metrics.duplicate(topic)
        return self.record_step(effects, record.pk, key, state, step)

    def record_step(self, effects: Effects, pk: str, key: bytes, before: PairState | None, step: Step) -> list[Out]:
        """Queue the step's new state as the record's write; return its lookups, audit and repair records."""
        partition, state, verdicts = effects.partition, step.state, step.verdicts
        if state is not None and (state is not before or effects.source != SOURCE_TICK):
            # an input record is recorded as applied even when it changed nothing (a duplicate), so that
            # its redelivery is recognised rather than counted again
            effects.writes.append((key, pk, self._recorded(effects, before, state, verdicts)))
        if state is not None and state.snapshot is not None:
            self.snapshots.note_step(effects, before, state)
        if state is not before:
            due, due_before = pair_state.pending_deadline(state), pair_state.pending_deadline(before)
            if due is None:
                if due_before is not None:  # settled: the sweep passes its old entry without reading it
                    self.index.discard(partition, pk)
            elif due != due_before:
                self.track_deadline(partition, pk, state.tracked, due)  # type: ignore[union-attr,arg-type]
        outs = [
            Out(self.lookup_topic, key, encode_request(pk, lookup.not_before_ms, lookup.attempt), None, partition)
            for lookup in step.lookups
        ]
        prefix = table_prefix(pk) if verdicts else ""
        for verdict in verdicts:
            self._count(effects, state, verdict, prefix)
            outs.extend(self.verdict_outs(pk, key, verdict))
        return outs

    def _recorded(
        self, effects: Effects, before: PairState | None, state: PairState, verdicts: Sequence[pair_state.Verdict]
    ) -> PairState:
        """The state to write: the step's, with the record's offset applied, its origin, the verdict history and
        the outbox of recent verdicts carried over from ``before``."""
        source = effects.source
        applied: tuple[int, ...]
        history: tuple[tuple[Any, ...], ...]
        origins: tuple[str, ...]
        kept: tuple[pair_state.Verdict, ...]
        if before is None:
            applied, history, origins, kept = state.applied, (), (), ()
        else:
            applied, history, origins, kept = before.applied, before.history, before.origins, before.outbox
        if source != SOURCE_TICK:
            applied = (*applied[:source], effects.offset, *applied[source + 1 :])
        if effects.origin:
            origins = (*origins, effects.origin)[-ORIGINS_KEPT:]
        if verdicts:
            history = (
                *history,
                *[(v.status._value_, v.late, v.event_id, v.classified_ms, v.reason) for v in verdicts],
            )[-HISTORY:]
        if kept:
            oldest = self.clock() - OUTBOX_MS
            kept = tuple(v for v in kept if v.classified_ms >= oldest)
        # built with ``build``, not the NamedTuple's constructor nor ``_replace``: this runs for every
        # record (docs/performance.md, "Per-record constant costs")
        recorded: PairState = build(
            PairState, (*state[:4], applied, history, origins, (*kept, *verdicts), state.snapshot)
        )
        return recorded

    def _count(self, effects: Effects, state: PairState | None, verdict: pair_state.Verdict, prefix: str) -> None:
        """A verdict in its window's counts (under its table: ``tally.counter``), its snapshot's, and the metrics."""
        status = verdict.status._value_  # ``.value`` is a Python-level property, read per verdict
        effects.count(verdict.window_start, counter(prefix, f"LATE_{status}" if verdict.late else status))
        table = prefix[:-1] if prefix else self.default_table
        self.metrics.classified(status, verdict.late, verdict.classified_ms - verdict.arrived_ms, table)
        if verdict.status in REPAIRABLE:
            self.metrics.repair_requested(status, table)
        if verdict.withdraws is not None:  # taken out of the problem counts it was in
            effects.count(verdict.window_start, counter(prefix, verdict.withdraws), -1)
            self.metrics.withdrawn(verdict.withdraws, table)
        if verdict.snapshot_id is not None:
            self.snapshots.note_verdict(effects, state, verdict)
        if verdict.differing_columns and not verdict.late:
            self.metrics.column_mismatch(verdict.differing_columns, table)

    def verdict_outs(
        self, pk: str, key: bytes, verdict: pair_state.Verdict, headers: list[tuple[str, bytes]] | None = None
    ) -> list[Out]:
        record = audit_record(pk, verdict, self.default_table)
        outs = [build(Out, (self.audit_topic, key, dumps_kept(record), headers, None))]
        if verdict.status in REPAIRABLE or verdict.withdraws is not None:
            outs.append(build(Out, (self.repair_topic, key, dumps_kept(repair_request(record)), headers, None)))
        return outs

    def track_deadline(self, partition: int, pk: str, tracked: pair_state.Tracked, due: int) -> None:
        self.index.add(partition, pk, due)
        # a re-read of a settled pair, or a late revision: its event's window need not wait for it
        if tracked.status == pair_state.PENDING and not tracked.reverify:
            self.windows.extend_due(partition, self.rules.windows.start(tracked.event_ts), due)
