"""topic → parse → table → reconcile → outputs, for one worker's partitions.

The Faust agents hand each record here and produce what comes back; this
module does no network I/O and takes its tables as plain mutable mappings
(``bytes → bytes``), so it runs the same against Faust's RocksDB tables and a
dict in a test. Everything a call reads or writes belongs to the partition of
the record being processed, which is what Faust's tables require.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Iterator, MutableMapping, NamedTuple

import orjson

from dqhash import classify
from dqhash.audit import REPAIRABLE, audit_record, dlq_headers, repair_request
from dqhash.classify import PairState, Rules, Step
from dqhash.codec import decode_state, encode_state
from dqhash.contracts import CloudHash, OnPremEvent, Reason, Rejection, parse_cloud, parse_onprem
from dqhash.deadlines import DeadlineIndex
from dqhash.metrics import Metrics
from dqhash.partitioning import partition_for
from dqhash.requests import encode_request
from dqhash.settings import Settings
from dqhash.tally import WindowTally, merge, metrics_record, new_window
from dqhash.timeutil import now_ms
from dqhash.windows import WindowSpec

log = logging.getLogger(__name__)

ONPREM, CLOUD = "onprem", "cloud"
#: Header naming the side of a record forwarded through the re-key topic.
SIDE_HEADER = "dq.side"
#: Keys read per partition and tick by the expiry scan (bounded work per tick).
EXPIRY_SCAN_BATCH = 1000
#: A new expiry pass over a partition starts at most this often (or every retention/4 if shorter).
EXPIRY_PASS_INTERVAL_MS = 60_000

Table = MutableMapping[bytes, bytes]
Scan = Callable[[Table, int], Iterator[tuple[bytes, bytes]]]


class Out(NamedTuple):
    """A record to produce."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None
    partition: int | None = None


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        pairs: Table,
        windows: Table,
        metrics: Metrics,
        scan: Scan,
        clock: Callable[[], int] = now_ms,
        horizon: Callable[[int, int], int] | None = None,
    ) -> None:
        self.settings = settings
        self.rules = Rules(
            WindowSpec(settings.window_ms, settings.grace_ms), settings.retention_ms, lookups=settings.lookups,
            lookup_delay_ms=settings.lookup_delay_ms, rechecks=settings.rechecks,
            recheck_backoff_ms=settings.recheck_backoff_ms, answer_wait_ms=settings.answer_wait_ms,
        )
        self.pairs = pairs
        self.windows = windows
        self.metrics = metrics
        self.scan = scan
        self.clock = clock
        #: (partition, now) → the time up to which deadlines may be swept: ``now`` unless the partition's
        #: cloud-side inputs lag, then their watermark (see agents.reconciler.sweep_horizon)
        self.horizon = horizon or (lambda partition, now: now)
        self.index = DeadlineIndex(resolution_ms=max(50, int(settings.tick_seconds * 1000)))
        self.tally = WindowTally()
        self.open_windows: dict[int, set[int]] = {}
        self.closed_windows: dict[int, set[int]] = {}
        #: partition → window start → the latest deadline of an event of that window: a
        #: window closes only once every event in it had its full grace (backfills included)
        self.window_due: dict[int, dict[int, int]] = {}
        self._expiry_scans: dict[int, Iterator[tuple[bytes, bytes]]] = {}
        self._next_expiry_pass: dict[int, int] = {}
        self._expiry_interval_ms = max(1, min(EXPIRY_PASS_INTERVAL_MS, settings.retention_ms // 4))

    # --- inputs -------------------------------------------------------------------------

    def on_input(
        self,
        side: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None = None,
    ) -> list[Out]:
        """A record from Topic-1 (``side=onprem``) or Topic-2 (``side=cloud``)."""
        record = self._parse(side, value)
        if isinstance(record, Rejection):
            return [self._dead_letter(record, topic, partition, offset, key, value, headers)]
        home = partition_for(record.pk, self.settings.partitions)
        if home != partition:
            forwarded = [(SIDE_HEADER, side.encode()), *((k, v) for k, v in (headers or ()) if k != SIDE_HEADER)]
            return [Out(self.settings.rekey_topic, record.pk.encode(), value, forwarded, home)]
        return self._apply(side, record, partition, topic)

    def on_rekeyed(
        self, partition: int, offset: int, key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes]] | None
    ) -> list[Out]:
        """A record forwarded to its PK's partition by :meth:`on_input`."""
        side = dict(headers or ()).get(SIDE_HEADER, b"").decode()
        topic = self.settings.onprem_topic if side == ONPREM else self.settings.cloud_topic
        record = self._parse(side, value) if side in (ONPREM, CLOUD) else Rejection(
            Reason.PROCESSING_ERROR, f"re-keyed record without a valid {SIDE_HEADER} header")
        if isinstance(record, Rejection):
            return [self._dead_letter(record, self.settings.rekey_topic, partition, offset, key, value, headers)]
        return self._apply(side, record, partition, topic)

    def dead_letter_error(
        self, exc: BaseException, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None,
    ) -> Out:
        """An unexpected error while processing one record: dead-letter it and carry on."""
        rejection = Rejection(Reason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"[:500])
        return self._dead_letter(rejection, topic, partition, offset, key, value, headers)

    def _parse(self, side: str, value: bytes | None) -> OnPremEvent | CloudHash | Rejection:
        parse = parse_onprem if side == ONPREM else parse_cloud
        return parse(value, self.settings.hash_strategy)

    def _apply(self, side: str, record: OnPremEvent | CloudHash, partition: int, topic: str) -> list[Out]:
        now = self.clock()
        key = record.pk.encode()
        raw = self.pairs.get(key)
        state = decode_state(raw) if raw is not None else None
        if side == ONPREM:
            step = classify.on_onprem(state, record, now, self.rules)
            if step.duplicate:
                self.tally.count(partition, self.rules.windows.start(record.event_ts), "DUPLICATES")
        else:
            step = classify.on_cloud(state, record, now, self.rules)
            if step.stale_cloud:
                self.metrics.stale_cloud()
                self.tally.count(partition, self.rules.windows.start(now), "STALE_CLOUD")
            if step.duplicate:
                self.tally.count(partition, self.rules.windows.start(record.cloud_ts), "DUPLICATES")
        if step.duplicate:
            self.metrics.duplicate(topic)
        return self._commit(partition, record.pk, key, state, step)

    # --- the tick: deadlines, expiry, windows --------------------------------------------

    def on_tick(self, partition: int) -> list[Out]:
        """Sweep the partition's due deadlines, expire settled state, close due windows.

        Deadlines and windows are swept only up to the horizon: a cloud hash
        still unread in Kafka (consumer lag) must not turn into a false
        MISSING_CLOUD.
        """
        now = self.clock()
        horizon = min(now, self.horizon(partition, now))
        outs: list[Out] = []
        for pk in self.index.pop_due(partition, horizon):
            key = pk.encode()
            raw = self.pairs.get(key)
            if raw is None:
                continue
            state = decode_state(raw)
            outs.extend(self._commit(partition, pk, key, state, classify.on_deadline(state, now, self.rules)))
        self._expire(partition, now)
        outs.extend(self._fold_windows(partition, now, horizon))
        return outs

    def _commit(self, partition: int, pk: str, key: bytes, before: PairState | None, step: Step) -> list[Out]:
        if step.state is not before:
            self.pairs[key] = encode_state(step.state)
            due = classify.pending_deadline(step.state)
            if due is not None and due != classify.pending_deadline(before):
                self._track_deadline(partition, pk, step.state.tracked.event_ts, due)
        outs = [Out(self.settings.lookup_topic, key, encode_request(pk, lookup.not_before_ms, lookup.attempt),
                    None, partition) for lookup in step.lookups]
        for verdict in step.verdicts:
            status = verdict.status.value
            self.tally.count(partition, verdict.window_start, f"LATE_{status}" if verdict.late else status)
            self.metrics.classified(status, verdict.late, verdict.classified_ms - verdict.arrived_ms)
            record = audit_record(pk, verdict)
            outs.append(Out(self.settings.audit_topic, key, orjson.dumps(record)))
            if verdict.status in REPAIRABLE:
                self.metrics.repair_requested(status)
                outs.append(Out(self.settings.repair_topic, key, orjson.dumps(repair_request(record))))
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
        for n, (key, raw) in enumerate(scan, start=1):
            at = classify.expires_at(decode_state(raw), self.rules)
            if at is not None and at <= now:
                expired.append(key)
            if n >= EXPIRY_SCAN_BATCH:
                break
        else:
            del self._expiry_scans[partition]  # a full pass is done; the next starts after the interval
        for key in expired:
            del self.pairs[key]
        self.metrics.expired(len(expired))

    def _fold_windows(self, partition: int, now: int, horizon: int) -> list[Out]:
        outs = []
        open_windows = self.open_windows.setdefault(partition, set())
        closed = self.closed_windows.setdefault(partition, set())
        for start, delta in sorted(self.tally.take(partition).items()):
            key = _window_key(partition, start)
            raw = self.windows.get(key)
            window = merge(orjson.loads(raw) if raw is not None else new_window(), delta)
            if window["closed"]:
                window["revision"] += 1  # a verdict for an already published window: publish again
                outs.append(self._window_out(partition, start, window, now))
            else:
                open_windows.add(start)
            self.windows[key] = orjson.dumps(window)
        size, grace = self.settings.window_ms, self.settings.grace_ms
        window_due = self.window_due.setdefault(partition, {})
        for start in sorted(s for s in open_windows if max(s + size + grace, window_due.get(s, 0)) <= horizon):
            window_due.pop(start, None)
            key = _window_key(partition, start)
            raw = self.windows.get(key)
            window = orjson.loads(raw) if raw is not None else new_window()
            window.update(closed=True, revision=window["revision"] + 1)
            self.windows[key] = orjson.dumps(window)
            open_windows.discard(start)
            closed.add(start)
            outs.append(self._window_out(partition, start, window, now))
        for start in [s for s in closed if s + size + self.settings.retention_ms <= now]:
            closed.discard(start)
            self.windows.pop(_window_key(partition, start), None)
        return outs

    def _window_out(self, partition: int, start: int, window: dict, now: int) -> Out:
        record = metrics_record(window, partition, start, self.settings.window_ms, now)
        self.metrics.window_closed(partition, record["compared"], record["match_rate"])
        return Out(self.settings.metrics_topic, f"{partition}:{start}".encode(), orjson.dumps(record))

    # --- partitions coming and going -----------------------------------------------------

    def rebuild(self, partitions: Iterable[int]) -> None:
        """Re-derive the in-memory index and window sets from the tables after (re)assignment."""
        wanted = set(partitions)
        for partition in set(self.index.partitions()) | set(self.open_windows) | set(self.window_due):
            if partition not in wanted:
                self.forget(partition)
        pending = scanned = 0
        for partition in wanted:
            self.index.drop_partition(partition)
            self.window_due.pop(partition, None)
            for key, raw in self.scan(self.pairs, partition):
                scanned += 1
                state = decode_state(raw)
                due = classify.pending_deadline(state)
                if due is not None:
                    self._track_deadline(partition, key.decode(), state.tracked.event_ts, due)
                    pending += 1
            open_windows, closed = self.open_windows.setdefault(partition, set()), self.closed_windows.setdefault(partition, set())
            open_windows.clear()
            closed.clear()
            for key, raw in self.scan(self.windows, partition):
                start = int(key.decode().rsplit(":", 1)[1])
                (closed if orjson.loads(raw)["closed"] else open_windows).add(start)
        log.info("rebuilt the deadline index for partitions %s from %d keys: %d pending pairs", sorted(wanted),
                 scanned, pending)

    def forget(self, partition: int) -> None:
        self.index.drop_partition(partition)
        self.tally.drop_partition(partition)
        self.open_windows.pop(partition, None)
        self.closed_windows.pop(partition, None)
        self.window_due.pop(partition, None)
        self._expiry_scans.pop(partition, None)

    # --- helpers ---------------------------------------------------------------------------

    def _dead_letter(
        self, rejection: Rejection, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None,
    ) -> Out:
        self.metrics.dead_lettered(rejection.reason.value, topic)
        self.tally.count(partition, self.rules.windows.start(self.clock()), f"DLQ_{rejection.reason.value}")
        log.debug("dead-lettered %s[%d]@%d: %s", topic, partition, offset, rejection.message)
        return Out(
            self.settings.dlq_topic, key, value if value is not None else b"",
            dlq_headers(rejection.reason.value, rejection.message, topic, partition, offset, headers),
        )


def _window_key(partition: int, start: int) -> bytes:
    return f"{partition}:{start}".encode()
