"""topic → parse → table → reconcile → outputs, for one worker's partitions.

The Faust agents hand each record here and produce what comes back; this
module does no network I/O and takes its tables as plain mutable mappings
(``bytes → bytes``), so it runs the same against Faust's RocksDB tables and a
dict in a test. Everything a record reads or writes belongs to its own partition, which is
what Faust's tables require.

Records come in batches (:meth:`Reconciler.process`): each record is applied on
its own, exactly as if it were alone, against a :class:`~dqhash.staged.StagedTable`;
the batch's writes are made once per key at the end. A batch is the unit of
work Faust acknowledges, so a crash replays whole batches, and the per-source
offsets kept in pair and window records make a replayed record count nothing twice.
"""

from __future__ import annotations

import logging
from functools import lru_cache, partial
from typing import Callable, Iterable, Iterator, MutableMapping, NamedTuple, Sequence, TypeVar

import orjson

from dqhash import classify
from dqhash.audit import REPAIRABLE, audit_record, dlq_headers, repair_request
from dqhash.classify import PairState, Rules, Step
from dqhash.codec import decode_state, settled_since
from dqhash.contracts import CloudHash, OnPremEvent, Reason, Rejection, parse_cloud, parse_onprem
from dqhash.deadlines import DeadlineIndex
from dqhash.metrics import Metrics
from dqhash.partitioning import partition_for
from dqhash.requests import encode_request
from dqhash.settings import Settings
from dqhash.staged import StagedTable, Writer, mapping_writer
from dqhash.tally import merge, metrics_record, new_window
from dqhash.timeutil import now_ms
from dqhash.tuples import build
from dqhash.windows import WindowSpec

log = logging.getLogger(__name__)

ONPREM, CLOUD = "onprem", "cloud"
_SIDES = {ONPREM: ONPREM.encode(), CLOUD: CLOUD.encode()}
#: Header naming the side of a record forwarded through the re-key topic.
SIDE_HEADER = "dq.side"
#: Header naming where a forwarded record was read: "side:partition:offset" of its input topic.
ORIGIN_HEADER = "dq.origin"
#: Header on audit / repair records a new partition owner publishes again (see ``Reconciler.rebuild``).
REPUBLISHED = [("dq.republished", b"1")]
#: Re-keyed origins remembered per pk (a redelivery re-forwarded later than this is counted as a replay).
ORIGINS_KEPT = 8
#: Keys read per partition and tick by the expiry scan (bounded work per tick).
EXPIRY_SCAN_BATCH = 1000
#: A new expiry pass over a partition starts at most this often (or every retention/4 if shorter).
EXPIRY_PASS_INTERVAL_MS = 60_000

#: Inputs whose offsets each pair and window remember (index into ``PairState.applied`` / window "applied").
SOURCE_ONPREM, SOURCE_CLOUD, SOURCE_REKEY, SOURCE_TICK = range(4)
#: Verdicts kept per pk for inspection (/dq/pairs/{pk}).
HISTORY = 5
#: Verdicts stay in a pk's outbox this long: ten times Faust's commit interval (1 s). Faust flushes the
#: producer before it commits, so a verdict older than the last commit has reached the audit topic; only
#: the outputs of a partition's last moments before a crash can be in the changelog and not in Kafka.
OUTBOX_MS = 10_000

Table = MutableMapping[bytes, bytes]
T = TypeVar("T")
Scan = Callable[[Table, int], Iterator[tuple[bytes, bytes]]]


class Out(NamedTuple):
    """A record to produce."""

    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone (a table key deleted)
    headers: list[tuple[str, bytes]] | None = None
    partition: int | None = None


class Input(NamedTuple):
    """One record of a batch; ``source`` is one of the ``SOURCE_*`` inputs."""

    source: int
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    headers: Sequence[tuple[str, bytes]] | None = None
    timestamp_ms: int | None = None


class _Effects:
    """What one input record does to its partition, applied in :meth:`Reconciler._apply_effects`.

    Window counts are written before pair state, to the same table (so the same changelog partition):
    if a pair's new state survived a crash, so did the counts it caused.
    """

    __slots__ = ("partition", "source", "offset", "origin", "counts", "writes")

    def __init__(self, partition: int, source: int, offset: int, origin: str | None = None) -> None:
        self.partition, self.source, self.offset, self.origin = partition, source, offset, origin
        self.counts: dict[int, dict[str, int]] = {}
        self.writes: list[tuple[bytes, PairState]] = []

    def count(self, window_start: int, key: str) -> None:
        counts = self.counts.get(window_start)
        if counts is None:
            counts = self.counts[window_start] = {}
        counts[key] = counts.get(key, 0) + 1


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        pairs: Table,
        metrics: Metrics,
        scan: Scan,
        clock: Callable[[], int] = now_ms,
        horizon: Callable[[int, int], int] | None = None,
        read: Callable[[int, bytes], bytes | None] | None = None,
        write: Writer | None = None,
    ) -> None:
        self.settings = settings
        self.rules = Rules(
            WindowSpec(settings.window_ms, settings.grace_ms), settings.retention_ms, lookups=settings.lookups,
            lookup_delay_ms=settings.lookup_delay_ms, rechecks=settings.rechecks,
            recheck_backoff_ms=settings.recheck_backoff_ms, answer_wait_ms=settings.answer_wait_ms,
        )
        self.pairs = pairs
        #: (partition, key) → value: a point read that skips the mapping layers of a Faust table
        self.read = read or (lambda partition, key: pairs.get(key))
        #: writes a batch's keys of one partition; returns records to produce (the table's changelog)
        self.write = write or mapping_writer(pairs)
        self.metrics = metrics
        self.scan = scan
        self.clock = clock
        #: (partition, now) → the time up to which deadlines may be swept: ``now`` unless the partition's
        #: cloud-side inputs lag, then their watermark (see agents.reconciler.sweep_horizon)
        self.horizon = horizon or (lambda partition, now: now)
        self.index = DeadlineIndex(resolution_ms=max(50, int(settings.tick_seconds * 1000)))
        #: the partitions of the last rebuild: only partitions new to this worker republish their outbox
        self.owned: set[int] = set()
        self.open_windows: dict[int, set[int]] = {}
        self.closed_windows: dict[int, set[int]] = {}
        #: closed windows whose counts changed since they were published (late verdicts): published again
        self.republish: dict[int, set[int]] = {}
        #: partition → window start → the latest deadline of an event of that window: a
        #: window closes only once every event in it had its full grace (backfills included)
        self.window_due: dict[int, dict[int, int]] = {}
        self._expiry_scans: dict[int, Iterator[tuple[bytes, bytes]]] = {}
        self._next_expiry_pass: dict[int, int] = {}
        self._expiry_interval_ms = max(1, min(EXPIRY_PASS_INTERVAL_MS, settings.retention_ms // 4))
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
                        outs.extend(self._guarded(record))
                for record in ticks:
                    outs.extend(self._guarded(record))
        finally:
            self._staged = None
        return staged.flush() + outs

    def _guarded(self, record: Input) -> list[Out]:
        try:
            if record.source == SOURCE_TICK:
                return self._on_tick(record.partition, record.offset)
            if record.source == SOURCE_REKEY:
                return self._on_rekeyed(record)
            return self._on_input(ONPREM if record.source == SOURCE_ONPREM else CLOUD, record)
        except Exception as exc:  # one bad record must never stop the batch, nor the worker
            log.exception("error processing %s[%d]@%d; dead-lettering it", record.topic, record.partition,
                          record.offset)
            return [self.dead_letter_error(exc, record.topic, record.partition, record.offset, record.key,
                                           record.value, record.headers)]

    # --- inputs, one record at a time ---------------------------------------------------

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
        self, partition: int, offset: int, key: bytes | None, value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None, timestamp_ms: int | None = None,
    ) -> list[Out]:
        """A record forwarded to its PK's partition, as a batch of one."""
        return self.process([Input(SOURCE_REKEY, self.settings.rekey_topic, partition, offset, key, value,
                                   _seq(headers), timestamp_ms)])

    def on_tick(self, partition: int, offset: int) -> list[Out]:
        """A tick of one partition, as a batch of one (see :meth:`_on_tick`)."""
        return self.process([Input(SOURCE_TICK, self.settings.tick_topic, partition, offset)])

    def _on_input(self, side: str, record: Input) -> list[Out]:
        source, topic, partition, offset, key, value, headers, timestamp_ms = record
        parsed = self._parse(side, value)
        if isinstance(parsed, Rejection):
            effects = _Effects(partition, source, offset)
            outs = [self._dead_letter(effects, parsed, topic, key, value, headers, timestamp_ms)]
            return self._apply_effects(effects, outs)
        home = partition_for(parsed.pk, self.settings.partitions)
        if home != partition:
            forwarded = [(SIDE_HEADER, _SIDES[side]), (ORIGIN_HEADER, f"{side}:{partition}:{offset}".encode())]
            if headers:
                forwarded += [(k, v) for k, v in headers if k not in (SIDE_HEADER, ORIGIN_HEADER)]
            return [build(Out, (self.settings.rekey_topic, parsed.pk.encode(), value, forwarded, home))]
        effects = _Effects(partition, source, offset)
        return self._apply_effects(effects, self._apply(effects, side, parsed, topic, timestamp_ms))

    def _on_rekeyed(self, record: Input) -> list[Out]:
        _, rekey_topic, partition, offset, key, value, headers, timestamp_ms = record
        found = dict(headers or ())
        side = found.get(SIDE_HEADER, b"").decode()
        effects = _Effects(partition, SOURCE_REKEY, offset, found.get(ORIGIN_HEADER, b"").decode() or None)
        topic = self.settings.onprem_topic if side == ONPREM else self.settings.cloud_topic
        parsed = self._parse(side, value) if side in (ONPREM, CLOUD) else Rejection(
            Reason.PROCESSING_ERROR, f"re-keyed record without a valid {SIDE_HEADER} header")
        if isinstance(parsed, Rejection):
            outs = [self._dead_letter(effects, parsed, rekey_topic, key, value, headers, timestamp_ms)]
            return self._apply_effects(effects, outs)
        return self._apply_effects(effects, self._apply(effects, side, parsed, topic, timestamp_ms))

    def dead_letter_error(
        self, exc: BaseException, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None,
    ) -> Out:
        """An unexpected error while processing one record: dead-letter it and carry on.

        Counted in the batch being processed, if any (outside a batch there is no table to write).
        """
        rejection = Rejection(Reason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"[:500])
        sources = {self.settings.onprem_topic: SOURCE_ONPREM, self.settings.cloud_topic: SOURCE_CLOUD,
                   self.settings.rekey_topic: SOURCE_REKEY}
        effects = _Effects(partition, sources.get(topic, SOURCE_TICK), offset)
        out = self._dead_letter(effects, rejection, topic, key, value, headers, None)
        if self._staged is not None:
            try:
                self._apply_effects(effects, [])
            except Exception:  # the table itself failing: the record still reaches the DLQ, uncounted
                log.exception("could not count the dead-lettered record %s[%d]@%d", topic, partition, offset)
        return out

    def _parse(self, side: str, value: bytes | None) -> OnPremEvent | CloudHash | Rejection:
        parse = parse_onprem if side == ONPREM else parse_cloud
        return parse(value, self.settings.hash_strategy)

    def _apply(self, effects: _Effects, side: str, record: OnPremEvent | CloudHash, topic: str,
               timestamp_ms: int | None) -> list[Out]:
        now = self.clock()
        key = record.pk.encode()
        state = self._staged.state(effects.partition, key)
        if state is not None and (effects.offset <= state.applied[effects.source] or effects.origin in state.origins):
            return []  # redelivered after a crash or rebalance (or forwarded again): already applied and counted
        if side == ONPREM:
            step = classify.on_onprem(state, record, now, self.rules)
            if step.duplicate:
                effects.count(self.rules.windows.start(record.event_ts), "DUPLICATES")
        else:
            step = classify.on_cloud(state, record, now, self.rules)
            if step.stale_cloud:
                self.metrics.stale_cloud()
                effects.count(self.rules.windows.start(timestamp_ms or now), "STALE_CLOUD")
            if step.duplicate:
                effects.count(self.rules.windows.start(record.cloud_ts), "DUPLICATES")
        if step.duplicate:
            self.metrics.duplicate(topic)
        return self._commit(effects, record.pk, key, state, step)

    # --- the tick: deadlines, expiry, windows --------------------------------------------

    def _on_tick(self, partition: int, offset: int) -> list[Out]:
        """Sweep the partition's due deadlines, expire settled state, close due windows.

        ``offset`` is the tick record's own, so a tick redelivered after a crash counts nothing twice.
        Deadlines and windows are swept only up to the horizon: a cloud hash still unread in Kafka
        (consumer lag) must not turn into a false MISSING_CLOUD.
        """
        now = self.clock()
        horizon = min(now, self.horizon(partition, now))
        effects = _Effects(partition, SOURCE_TICK, offset)
        outs: list[Out] = []
        for pk in self.index.pop_due(partition, horizon):
            key = pk.encode()
            state = self._staged.state(partition, key)
            if state is None:
                continue
            outs.extend(self._commit(effects, pk, key, state, classify.on_deadline(state, now, self.rules)))
        self._apply_effects(effects, outs)
        self._expire(partition, now)
        outs.extend(self._close_windows(partition, now, horizon))
        return outs

    def _commit(self, effects: _Effects, pk: str, key: bytes, before: PairState | None, step: Step) -> list[Out]:
        partition, source, state, verdicts = effects.partition, effects.source, step.state, step.verdicts
        if state is not None and (state is not before or source != SOURCE_TICK):
            # an input record is recorded as applied even when it changed nothing (a duplicate), so that
            # its redelivery is recognised rather than counted again
            if before is None:
                applied, history, origins, kept = state.applied, (), (), ()
            else:
                applied, history, origins, kept = before.applied, before.history, before.origins, before.outbox
            if source != SOURCE_TICK:
                applied = (*applied[:source], effects.offset, *applied[source + 1:])
            if effects.origin:
                origins = (*origins, effects.origin)[-ORIGINS_KEPT:]
            if verdicts:
                history = (*history, *[(v.status._value_, v.late, v.event_id, v.classified_ms, v.reason)
                                       for v in verdicts])[-HISTORY:]
            if kept:
                oldest = self.clock() - OUTBOX_MS
                kept = tuple(v for v in kept if v.classified_ms >= oldest)
            # built with ``build``, not the NamedTuple's constructor nor ``_replace``: this runs for every
            # record (``_replace`` cost 5 % of a worker)
            effects.writes.append((key, build(PairState, (*state[:4], applied, history, origins, (*kept, *verdicts)))))
        if state is not before:
            due = classify.pending_deadline(state)
            if due is not None and due != classify.pending_deadline(before):
                self._track_deadline(partition, pk, state.tracked.event_ts, due)
        outs = [Out(self.settings.lookup_topic, key, encode_request(pk, lookup.not_before_ms, lookup.attempt),
                    None, partition) for lookup in step.lookups] if step.lookups else []
        for verdict in verdicts:
            status = verdict.status._value_  # (``.value`` is a Python-level property: 0.2 µs a read)
            effects.count(verdict.window_start, f"LATE_{status}" if verdict.late else status)
            self.metrics.classified(status, verdict.late, verdict.classified_ms - verdict.arrived_ms)
            if verdict.status in REPAIRABLE:
                self.metrics.repair_requested(status)
            outs.extend(self._verdict_outs(pk, key, verdict))
        return outs

    def _verdict_outs(self, pk: str, key: bytes, verdict: classify.Verdict,
                      headers: list[tuple[str, bytes]] | None = None) -> list[Out]:
        record = audit_record(pk, verdict)
        outs = [build(Out, (self.settings.audit_topic, key, orjson.dumps(record), headers, None))]
        if verdict.status in REPAIRABLE:
            outs.append(build(Out, (self.settings.repair_topic, key, orjson.dumps(repair_request(record)), headers, None)))
        return outs

    def _apply_effects(self, effects: _Effects, outs: list[Out]) -> list[Out]:
        """Fold the record's counts into its windows, then write the pairs it changed.

        Each window remembers the newest offset per source it has counted, so a record redelivered
        after a crash (its counts already in) adds nothing: window totals stay exact under failover.
        """
        partition, source, offset = effects.partition, effects.source, effects.offset
        staged = self._staged
        counts = effects.counts
        for start, delta in (sorted(counts.items()) if len(counts) > 1 else counts.items()):
            key = window_key(partition, start)
            window = staged.window(partition, key) or new_window()
            if offset <= window["applied"][source]:
                continue
            merge(window, delta)  # in place: the batch's staged copy, written once at its end
            window["applied"][source] = offset
            if window["closed"]:
                window["revision"] += 1  # a verdict for an already published window: publish again
                self.republish.setdefault(partition, set()).add(start)
            else:
                self.open_windows.setdefault(partition, set()).add(start)
            staged.put_window(partition, key, window)
        for key, state in effects.writes:
            staged.put_state(partition, key, state)
        return outs

    def _track_deadline(self, partition: int, pk: str, event_ts: int, due: int) -> None:
        self.index.add(partition, pk, due)
        window_due = self.window_due.setdefault(partition, {})
        start = self.rules.windows.start(event_ts)
        if due > window_due.get(start, 0):
            window_due[start] = due

    def _expire(self, partition: int, now: int) -> None:
        scan = self._expiry_scans.get(partition)
        if scan is None:
            if now < self._next_expiry_pass.get(partition, 0):
                return
            self._next_expiry_pass[partition] = now + self._expiry_interval_ms
            scan = self._expiry_scans[partition] = self.scan(self.pairs, partition)
        expired = []
        staged = self._staged
        retention = self.rules.retention_ms
        for n, (key, raw) in enumerate(scan, start=1):
            if not is_window_key(key):
                if staged.is_staged(key):  # the batch's own state, if it changed this key
                    state = staged.state(partition, key)
                    at = classify.expires_at(state, self.rules) if state is not None else None
                else:
                    since = settled_since(raw)
                    at = since + retention if since is not None else None
                if at is not None and at <= now:
                    expired.append(key)
            if n >= EXPIRY_SCAN_BATCH:
                break
        else:
            del self._expiry_scans[partition]  # a full pass is done; the next starts after the interval
        for key in expired:
            staged.put_state(partition, key, None)
        self.metrics.expired(len(expired))

    def _close_windows(self, partition: int, now: int, horizon: int) -> list[Out]:
        outs = []
        size, grace = self.settings.window_ms, self.settings.grace_ms
        open_windows = self.open_windows.setdefault(partition, set())
        closed = self.closed_windows.setdefault(partition, set())
        window_due = self.window_due.setdefault(partition, {})
        closing = sorted(s for s in open_windows if max(s + size + grace, window_due.get(s, 0)) <= horizon)
        for start in closing:
            window_due.pop(start, None)
            open_windows.discard(start)
            closed.add(start)
            outs.append(self._publish(partition, start, now, close=True))
        for start in sorted(self.republish.pop(partition, ())):
            outs.append(self._publish(partition, start, now, close=False))
        for start in [s for s in closed if s + size + self.settings.retention_ms <= now]:
            closed.discard(start)
            self._staged.put_window(partition, window_key(partition, start), None)
        return outs

    def _publish(self, partition: int, start: int, now: int, close: bool) -> Out:
        key = window_key(partition, start)
        window = dict(self._staged.window(partition, key) or new_window())
        if close:
            window.update(closed=True, revision=window["revision"] + 1)
        window.update(published=window["revision"], published_ms=now)
        self._staged.put_window(partition, key, window)
        record = metrics_record(window, partition, start, self.settings.window_ms, now)
        self.metrics.window_closed(partition, record["compared"], record["match_rate"])
        return self._window_out(partition, start, record)

    def _window_out(self, partition: int, start: int, record: dict, headers: list | None = None) -> Out:
        return Out(self.settings.metrics_topic, f"{partition}:{start}".encode(), orjson.dumps(record), headers)

    def _window_published_again(self, partition: int, start: int, window: dict) -> list[Out]:
        """The record as it was published (same ``emitted_at``), marked as published again."""
        at = window["published_ms"]
        record = metrics_record(window, partition, start, self.settings.window_ms, at)
        return [self._window_out(partition, start, record, REPUBLISHED)]

    # --- partitions coming and going -----------------------------------------------------

    def rebuild(self, partitions: Iterable[int]) -> list[Out]:
        """Re-derive the in-memory index and window sets from the table after (re)assignment.

        Returns the outbox verdicts and the recently published windows of partitions this worker did not
        own before, to publish again: their previous owner may have died after their state reached the
        changelog and before their audit and metrics records reached Kafka. A window is sent again as it
        was (same revision, counts and ``emitted_at``), so consumers' upsert by revision is unchanged.
        """
        wanted = set(partitions)
        for partition in set(self.index.partitions()) | set(self.open_windows) | set(self.window_due):
            if partition not in wanted:
                self.forget(partition)
        pending = scanned = 0
        resend: list[Out] = []
        for partition in wanted:
            taken_over = partition not in self.owned
            self.forget(partition)
            open_windows, closed = self.open_windows.setdefault(partition, set()), self.closed_windows.setdefault(partition, set())
            republish = self.republish.setdefault(partition, set())
            published: list[tuple[int, Callable[[], list[Out]]]] = []  # (when, its outputs) by the previous owner
            for key, raw in self.scan(self.pairs, partition):
                if is_window_key(key):
                    start = window_start_of(key)
                    window = orjson.loads(raw)
                    (closed if window["closed"] else open_windows).add(start)
                    if window["closed"] and window["revision"] > window.get("published", 0):
                        republish.add(start)
                    elif taken_over and window["closed"] and "published_ms" in window:
                        # as verdicts: its record may be in the changelog, marked published, and not in Kafka
                        published.append((window["published_ms"],
                                          partial(self._window_published_again, partition, start, window)))
                    continue
                scanned += 1
                state = decode_state(raw)
                if taken_over and state.outbox:
                    pk = key.decode()
                    published.extend((verdict.classified_ms, partial(self._verdict_outs, pk, key, verdict, REPUBLISHED))
                                     for verdict in state.outbox)
                due = classify.pending_deadline(state)
                if due is not None:
                    self._track_deadline(partition, key.decode(), state.tracked.event_ts, due)
                    pending += 1
            resend.extend(out for outputs in _last_moments(published) for out in outputs())
        self.owned = wanted  # (a revoke does not clear it: Faust revokes everything on every rebalance)
        log.info("rebuilt the deadline index for partitions %s from %d keys: %d pending pairs, %d recent verdict "
                 "and window outputs published again", sorted(wanted), scanned, pending, len(resend))
        return resend

    def forget(self, partition: int) -> None:
        self.index.drop_partition(partition)
        for derived in (self.open_windows, self.closed_windows, self.republish, self.window_due, self._expiry_scans):
            derived.pop(partition, None)

    # --- helpers ---------------------------------------------------------------------------

    def _dead_letter(
        self, effects: _Effects, rejection: Rejection, topic: str, key: bytes | None, value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None, timestamp_ms: int | None,
    ) -> Out:
        self.metrics.dead_lettered(rejection.reason.value, topic)
        effects.count(self.rules.windows.start(timestamp_ms or self.clock()), f"DLQ_{rejection.reason.value}")
        log.debug("dead-lettered %s[%d]@%d: %s", topic, effects.partition, effects.offset, rejection.message)
        return _dlq_out(self.settings.dlq_topic, rejection, topic, effects.partition, effects.offset, key, value,
                        headers)


def _last_moments(published: list[tuple[int, T]]) -> list[T]:
    """What a partition published in its last OUTBOX_MS, measured from its newest output, not from now, oldest first.

    A new owner rebuilds a session timeout or more after its predecessor died, so "recent" must be
    judged on the predecessor's clock: what it published before its last commit was delivered.
    Callers pass makers of outputs, not outputs: a settled pk keeps its last verdict in its outbox
    until its next write, so most of a partition's outbox is older and is never serialised.
    """
    if not published:
        return []
    since = max(at for at, _ in published) - OUTBOX_MS
    return [item for at, item in sorted(published, key=lambda entry: entry[0]) if at >= since]


def _seq(headers: Iterable[tuple[str, bytes]] | None) -> Sequence[tuple[str, bytes]] | None:
    return headers if headers is None or isinstance(headers, (list, tuple)) else list(headers)


def _dlq_out(dlq_topic: str, rejection: Rejection, topic: str, partition: int, offset: int, key: bytes | None,
             value: bytes | None, headers: Iterable[tuple[str, bytes]] | None) -> Out:
    return Out(dlq_topic, key, value if value is not None else b"",
               dlq_headers(rejection.reason.value, rejection.message, topic, partition, offset, headers))


#: Window records share the pair table under keys no PK can have (0xFF never occurs in UTF-8).
WINDOW_PREFIX = b"\xff"


@lru_cache(maxsize=4096)  # every verdict counts into its window: the key of a few windows, over and over
def window_key(partition: int, start: int) -> bytes:
    return WINDOW_PREFIX + f"{partition}:{start}".encode()


def is_window_key(key: bytes) -> bool:
    return key[:1] == WINDOW_PREFIX


def window_start_of(key: bytes) -> int:
    return int(key[1:].decode().rsplit(":", 1)[1])


def window_partition_of(key: bytes) -> int:
    return int(key[1:].decode().split(":", 1)[0])
