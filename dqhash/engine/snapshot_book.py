"""Snapshot runs per partition: rows counted once, both sides' completeness, then a bounded judging sweep.

The counts live in the table (``core.snapshots``); which runs a partition holds and which of them are being
swept is derived state, rebuilt from the table on assignment (``Takeover``). The sweep reads the partition's
pairs from a store snapshot, ``SWEEP_BATCH`` keys a tick, so a tick's work stays bounded however large the
table; it writes only the pairs it gives a verdict, and a re-sweep after a restart skips what was judged.
"""

from __future__ import annotations

from typing import Any

import orjson

from dqhash.core import classify, pair_state
from dqhash.core.codec import snapshot_judged
from dqhash.core.input_records import SnapshotEnd
from dqhash.core.jsontext import dumps_kept
from dqhash.core.pair_state import PairState, Rules
from dqhash.core.records import Out
from dqhash.core.snapshots import (
    SNAPSHOT_PREFIX,
    count_row,
    count_verdict,
    is_complete,
    mark_end,
    new_record,
    snapshot_key,
    summary,
)
from dqhash.engine.cursors import Cursors
from dqhash.engine.effects import Effects
from dqhash.engine.ports import Clock, Scan, Table
from dqhash.engine.staged import StagedTable

#: Pair keys read per partition and tick by a judging sweep.
SWEEP_BATCH = 20_000
#: A running snapshot's summary is published at most this often per partition (and once more when judged).
PUBLISH_INTERVAL_MS = 1_000


class SnapshotBook:
    def __init__(self, topic: str, pairs: Table, scan: Scan, rules: Rules, clock: Clock) -> None:
        self.topic, self.rules, self.clock = topic, rules, clock
        #: partition → snapshot ids whose records it holds
        self.known: dict[int, set[str]] = {}
        #: partition → snapshot ids being judged, each a pass over the partition's pairs (``_passes``)
        self.sweeps: dict[int, set[str]] = {}
        self._passes = Cursors(pairs, scan)

    # --- counting, record by record ---------------------------------------------------------

    def note_step(self, effects: Effects, before: PairState | None, after: PairState | None) -> None:
        """Rows that joined a side of a snapshot with this step (a pk counts once per side and run)."""
        member = after.snapshot if after is not None else None
        if member is None:
            return
        was = before.snapshot if before is not None else None
        fresh = was is None or was.snapshot_id != member.snapshot_id
        if member.onprem and (fresh or not was.onprem):  # type: ignore[union-attr]
            effects.snapshot_events.append(("row", member.snapshot_id, "onprem", member.token_range))
        if member.cloud and (fresh or not was.cloud):  # type: ignore[union-attr]
            effects.snapshot_events.append(("row", member.snapshot_id, "cloud", member.token_range))

    def note_verdict(self, effects: Effects, state: PairState | None, verdict: pair_state.Verdict) -> None:
        member = state.snapshot if state is not None else None
        token_range = member.token_range if member is not None and member.snapshot_id == verdict.snapshot_id else None
        status = verdict.status._value_
        snapshot_id = verdict.snapshot_id
        if snapshot_id is not None:
            effects.snapshot_events.append(
                ("verdict", snapshot_id, f"LATE_{status}" if verdict.late else status, token_range)
            )
            if verdict.withdraws is not None:
                effects.snapshot_events.append(("withdrawn", snapshot_id, verdict.withdraws, token_range))

    def note_end(self, effects: Effects, side: str, end: SnapshotEnd) -> None:
        effects.snapshot_events.append(("end", end.snapshot_id, side, (end.rows, end.started_ts, end.part, end.parts)))

    def fold(self, staged: StagedTable, effects: Effects) -> None:
        """Fold one record's snapshot events into the partition's records (the batch's staged copies).

        A record's events are counted once: a run's record that has applied this record's offset (a
        redelivery) takes none of them. Each run's record is looked up and staged once per input record, as
        every snapshot row passes here."""
        partition, source, offset = effects.partition, effects.source, effects.offset
        now = self.clock()
        records: dict[str, dict[str, Any] | None] = {}  # run → its record, None if it applied this offset
        for kind, snapshot_id, what, extra in effects.snapshot_events:
            if snapshot_id in records:
                record = records[snapshot_id]
            else:
                record = records[snapshot_id] = self._record_to_fold(
                    staged, partition, snapshot_id, source, offset, now
                )
            if record is None:
                continue
            if kind == "row":
                count_row(record, what, extra)
            elif kind == "verdict":
                count_verdict(record, what, extra)
            elif kind == "withdrawn":
                count_verdict(record, what, extra, -1)
            else:
                rows, started_ts, part, parts = extra
                mark_end(record, what, rows, started_ts, now, part, parts)
            record["revision"] += 1
        for snapshot_id, record in records.items():
            if record is None:
                continue
            record["applied"][source] = offset
            if record["complete_ms"] is None and is_complete(record):
                record["complete_ms"] = now
                self._start_sweep(partition, snapshot_id)
            staged.put_window(partition, snapshot_key(partition, snapshot_id), record)

    def _record_to_fold(
        self, staged: StagedTable, partition: int, snapshot_id: str, source: int, offset: int, now: int
    ) -> dict[str, Any] | None:
        """The run's record in the partition (a new one if it has none), or None if it applied ``offset``."""
        record = staged.window(partition, snapshot_key(partition, snapshot_id))
        if record is None:
            self.known.setdefault(partition, set()).add(snapshot_id)
            return new_record(snapshot_id, partition, now)
        return None if offset <= record["applied"][source] else record

    # --- ticks ------------------------------------------------------------------------------

    def sweep(self, staged: StagedTable, effects: Effects, updates: Any, horizon: int | None = None) -> list[Out]:
        """Judge up to SWEEP_BATCH pairs of each complete snapshot; publish changed summaries.

        A run is judged once the partition's inputs are read past its completion plus the grace (``horizon``):
        an on-prem change committed before the scan read the row may still be on its way through Topic-1.
        """
        partition, now = effects.partition, self.clock()
        horizon = now if horizon is None else horizon
        outs: list[Out] = []
        for snapshot_id in sorted(self.sweeps.get(partition, ())):
            key = snapshot_key(partition, snapshot_id)
            record = staged.window(partition, key)
            name = f"snapshot:{snapshot_id}"
            if record is None:
                self._end_sweep(partition, snapshot_id)
                continue
            if horizon < record["complete_ms"] + self.rules.windows.grace_ms:
                continue
            if not self._passes.active(partition, name):  # begun at the first tick after completion: every
                self._passes.begin(partition, name)  # row's state is in the store by then
            started_ts = record["onprem"]["started_ts"]
            needle = orjson.dumps(snapshot_id)  # how the id appears in a member pair's stored state
            items, done = self._passes.read(partition, name, SWEEP_BATCH)
            for pair_key, raw in items:
                if pair_key[:1] < SNAPSHOT_PREFIX and needle in raw and not self._judged(staged, pair_key, raw):
                    state = staged.state(partition, pair_key)  # a pair of this run, perhaps, still to judge
                    member = state.snapshot if state is not None else None
                    if member is not None and member.snapshot_id == snapshot_id and not member.judged:
                        step = classify.on_snapshot_complete(state, started_ts, now, self.rules, horizon)  # type: ignore[arg-type]
                        if step.state is not state:
                            outs.extend(updates.record_step(effects, pair_key.decode(), pair_key, state, step))
            if done:
                self._end_sweep(partition, snapshot_id)
                record["judged_ms"] = now
                record["revision"] += 1
                staged.put_window(partition, key, record)
        return outs

    @staticmethod
    def _judged(staged: StagedTable, key: bytes, raw: bytes) -> bool:
        """Judged as the store holds it, unless this batch changed it (its staged state decides then)."""
        return not staged.is_staged(key) and snapshot_judged(raw)

    def publish_due(self, staged: StagedTable, partition: int) -> list[Out]:
        """Summaries of the partition's snapshots that changed since last published (at most once a second)."""
        now = self.clock()
        outs = []
        for snapshot_id in sorted(self.known.get(partition, ())):
            key = snapshot_key(partition, snapshot_id)
            record = staged.window(partition, key)
            if record is None:
                self.known[partition].discard(snapshot_id)
                continue
            if record["judged_ms"] is not None and record["judged_ms"] + self.rules.retention_ms <= now:
                staged.put_window(partition, key, None)  # judged longer than the retention ago
                self.known[partition].discard(snapshot_id)
                continue
            changed = record["revision"] > record["published"]
            if not changed or (now - record.get("published_ms", 0) < PUBLISH_INTERVAL_MS and not record["judged_ms"]):
                continue
            record.update(published=record["revision"], published_ms=now)
            staged.put_window(partition, key, record)
            outs.append(Out(self.topic, f"recon:{snapshot_id}:{partition}".encode(), dumps_kept(summary(record, now))))
        return outs

    # --- partitions coming and going --------------------------------------------------------

    def rebuilt(self, partition: int, key: bytes, raw: bytes) -> None:
        """A snapshot record found while rebuilding a partition: resume its sweep if it was not finished."""
        record = orjson.loads(raw)
        snapshot_id = record["snapshot_id"]
        self.known.setdefault(partition, set()).add(snapshot_id)
        if record["complete_ms"] is not None and record["judged_ms"] is None:
            self._start_sweep(partition, snapshot_id)

    def forget(self, partition: int) -> None:
        self.known.pop(partition, None)
        self.sweeps.pop(partition, None)
        self._passes.forget(partition)

    def _start_sweep(self, partition: int, snapshot_id: str) -> None:
        self.sweeps.setdefault(partition, set()).add(snapshot_id)

    def _end_sweep(self, partition: int, snapshot_id: str) -> None:
        self.sweeps.get(partition, set()).discard(snapshot_id)
        self._passes.end(partition, f"snapshot:{snapshot_id}")
