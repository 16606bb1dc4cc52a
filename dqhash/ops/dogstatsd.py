"""DataDog metrics over DogStatsD (UDP): the seed's counter names, low-cardinality tags only.

Tags are env/service/version (constant), ``status``, ``topic``, ``reason``,
``partition`` and ``table`` — never a PK or a hash: every tag combination is a billed custom
metric, so the tables tagged by name are bounded (DQHASH_METRICS_MAX_TABLES, then ``table:_other``). The client aggregates counters in process and flushes a buffer every
0.3 s from its own thread, so the hot path pays a dict update, and a missing
agent costs nothing but lost UDP datagrams. Inside :meth:`Metrics.batch` (a
reconciler batch) counters are summed locally and handed to the client once
per name and tag set, as the client's own aggregation would have; distribution
samples (one per verdict, which the client would format and buffer one line
each: a measurable share of a busy worker, docs/performance.md) are sent once
per batch as packed lines,
``name:v1:v2:...|d|#tags`` (DogStatsD protocol v1.1, Agent 6.25 / 7.25 and later):
every sample still reaches the agent, none is sampled away.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from datadog.dogstatsd.base import DogStatsd

from dqhash.core import statuses
from dqhash.core.input_records import Reason
from dqhash.ops.log_limits import AgentUnreachable

log = logging.getLogger(__name__)

#: Classification status → the seed's counter name.
STATUS_COUNTERS = statuses.COUNTERS
#: Every on-prem DELETE counts in ``dq_delete_count`` once, at its first verdict, whether it was checked or not.
DELETE_STATUSES = statuses.DELETES
DELETE_COUNT = "dq_delete_count"
#: DLQ reasons that also have a counter of their own in the seed.
REASON_COUNTERS = {
    Reason.INVALID_HASH_FORMAT.value: "dq_invalid_hash",
    Reason.MISSING_PK.value: "dq_missing_pk",
}
DUPLICATES = "dq_duplicates"
#: re-verification reads that found the row as it was (drift is a status: ``dq_cloud_drift``)
REVERIFIED = "dq_reverified"
#: per input partition this worker owns: records and seconds behind (``dqhash.ops.status``), every 5 s
KAFKA_LAG, KAFKA_LAG_SECONDS = "dq_kafka_lag", "dq_kafka_lag_seconds"
#: tap fill and the share of full batches per input topic, tagged ``kind`` and ``topic``
BACKPRESSURE = "dq_backpressure"
#: a MISMATCH / CLOUD_DRIFT per column that differs, tagged ``column:<name>``
COLUMN_MISMATCH = "dq_column_mismatch"
#: distinct column tags per worker when the hashed columns are not configured; the rest count as ``_other``
COLUMN_TAGS_MAX = 64
LATE = "dq_late_arrival"
DLQ_RECORDS = "dq_dlq_records"
STALE_CLOUD = "dq_stale_cloud"
EXPIRED = "dq_state_expired"
TIME_TO_CLASSIFY = "dq_time_to_classify_ms"
WINDOW_MATCH_RATE = "dq_window_match_rate"
WINDOW_COMPARED = "dq_window_compared"
LOOKUPS = "dq_lookups"
LOOKUPS_COALESCED = "dq_lookups_coalesced"
LOOKUP_FAILED = "dq_lookup_failed"
CASSANDRA_TIMEOUT = "dq_cassandra_timeout"
PARTIAL_ROW = "dq_partial_row"
SCHEMA_DRIFT = "dq_schema_drift_detected"
COLUMN_REMOVED = "dq_column_removed"
REPAIR_REQUESTS = "dq_repair_requests"
#: problem verdicts withdrawn because a newer on-prem event explains them (tagged ``status``: how it was counted)
WITHDRAWN = "dq_withdrawn"
#: Every on-time classification, and those made within the SLO budget (window + grace + slack): the SLO's
#: good/total events (dqhash/ops/datadog/slos.json).
CLASSIFIED = "dq_classified"
CLASSIFIED_ON_TIME = "dq_classified_on_time"
#: the age of a table's verified-through time: every change committed before it has a final verdict
VERIFIED_AGE = "dq_verified_age_seconds"
#: changes a committed transaction made that never reached dqhash (Debezium's transaction metadata)
TRANSACTION_SHORTFALL = "dq_transaction_shortfall"
#: the tag of tables past the tagged limit (DQHASH_METRICS_MAX_TABLES)
OTHER_TABLES = "_other"
#: Samples per packed distribution line: about 1 KB, so a line fits one UDP packet (1,432 bytes)
PACKED_SAMPLES = 150

#: Every metric name dqhash emits (monitors are checked against this).
ALL_METRICS = frozenset(
    set(STATUS_COUNTERS.values())
    | set(REASON_COUNTERS.values())
    | {
        DUPLICATES,
        REVERIFIED,
        COLUMN_MISMATCH,
        KAFKA_LAG,
        KAFKA_LAG_SECONDS,
        BACKPRESSURE,
        LATE,
        DLQ_RECORDS,
        STALE_CLOUD,
        EXPIRED,
        TIME_TO_CLASSIFY,
        WINDOW_MATCH_RATE,
        WINDOW_COMPARED,
        LOOKUPS,
        LOOKUPS_COALESCED,
        LOOKUP_FAILED,
        CASSANDRA_TIMEOUT,
        PARTIAL_ROW,
        SCHEMA_DRIFT,
        COLUMN_REMOVED,
        REPAIR_REQUESTS,
        WITHDRAWN,
        CLASSIFIED,
        CLASSIFIED_ON_TIME,
        VERIFIED_AGE,
        TRANSACTION_SHORTFALL,
    }
)


class Metrics:
    """What the pipeline reports; a disabled instance does nothing."""

    def __init__(
        self,
        host: str,
        port: int,
        tags: list[str],
        enabled: bool = True,
        on_time_ms: int | None = None,
        columns: tuple[str, ...] | None = None,
        max_tables: int = 100,
        hand_over_s: float = 0.0,
    ) -> None:
        self.enabled = enabled
        #: a batch's tallies are handed to the client at most this often: what a batch hands over grows with the
        #: tables it touched (a line per status and table), not with its records, so a busy worker proving many
        #: tables hands over once a second, not once a batch (0: at the end of every batch)
        self.hand_over_s = hand_over_s
        self._handed_over = time.monotonic()
        #: table → its ``table:`` tag, in order of first metric; past ``max_tables`` tables, ``table:_other``
        self._table_tags: dict[str, str] = {}
        self.max_tables = max_tables
        #: the hashed columns (DQHASH_HASH_COLUMNS), the only names ``dq_column_mismatch`` is tagged with
        self.columns = frozenset(columns) if columns else None
        self._seen_columns: set[str] = set()
        #: the SLO budget from arrival to verdict (None: every verdict counts as on time)
        self.on_time_ms = on_time_ms
        self.client = None
        #: counts and distribution samples held since the last hand-over: (name, tags) → n, (name, tags) → samples
        self._held: Counter = Counter()
        self._in_batch = False
        self._samples: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        #: a batch's verdicts: (status, late, on time) → n, and status → time-to-classify samples
        self._verdicts: Counter = Counter()
        self._times: dict[str, list[int]] = {}
        #: the client's "Error submitting packet" lines, as one line naming DogStatsD (``ops.log_limits``)
        self.agent = AgentUnreachable(f"{host}:{port}")
        if enabled:
            logging.getLogger("datadog.dogstatsd").addFilter(self.agent)
            self.client = DogStatsd(
                host=host,
                port=port,
                constant_tags=tags,
                disable_buffering=False,
                disable_aggregation=False,
                disable_telemetry=True,
                flush_interval=0.3,
            )

    def table_tag(self, table: str) -> str:
        """``table:<name>`` for the first DQHASH_METRICS_MAX_TABLES tables, ``table:_other`` for the rest."""
        tag = self._table_tags.get(table)
        if tag is None:
            known = len(self._table_tags) < self.max_tables
            tag = f"table:{table}" if known else f"table:{OTHER_TABLES}"
            if known:
                self._table_tags[table] = tag
        return tag

    def classified(self, status: str, late: bool, time_to_classify_ms: int, table: str = "default") -> None:
        """One verdict: a tally and a sample while a batch runs (one a record), made counters at its end."""
        if self.client is None:
            return
        if not self._in_batch:
            with self.batch():
                self.classified(status, late, time_to_classify_ms, table)
            self.hand_over()
            return
        on_time = not late and (self.on_time_ms is None or time_to_classify_ms <= self.on_time_ms)
        self._verdicts[status, late, on_time, self.table_tag(table)] += 1
        if not late:  # by status only: each table's SLO is its on-time counters, and a distribution per table
            samples = self._times.get(status)  # multiplies the billed series and the lines per batch
            if samples is None:
                samples = self._times[status] = []
            samples.append(time_to_classify_ms)

    def duplicate(self, topic: str) -> None:
        self._count(DUPLICATES, [f"topic:{topic}"])

    def stale_cloud(self) -> None:
        self._count(STALE_CLOUD)

    def reverified(self) -> None:
        self._count(REVERIFIED)

    def lag(self, topic: str, partition: int, records: int | None, seconds: float | None) -> None:
        if self.client is None or records is None:
            return
        tags = [f"topic:{topic}", f"partition:{partition}"]
        self.client.gauge(KAFKA_LAG, records, tags=tags)
        if seconds is not None:
            self.client.gauge(KAFKA_LAG_SECONDS, seconds, tags=tags)

    def backpressure(self, kind: str, topic: str, value: float) -> None:
        if self.client is not None:
            self.client.gauge(BACKPRESSURE, value, tags=[f"kind:{kind}", f"topic:{topic}"])

    def column_mismatch(self, columns: tuple[str, ...], table: str = "default") -> None:
        """Tags come from the schema, never the data: the configured hashed columns, else the first
        COLUMN_TAGS_MAX names seen (a column name outside those is ``_other``)."""
        table_tag = self.table_tag(table)
        for column in columns:
            if self.columns is not None:
                tag = column if column in self.columns else "_other"
            elif column in self._seen_columns or len(self._seen_columns) < COLUMN_TAGS_MAX:
                self._seen_columns.add(column)
                tag = column
            else:
                tag = "_other"
            self._count(COLUMN_MISMATCH, [f"column:{tag}", table_tag])

    def dead_lettered(self, reason: str, topic: str) -> None:
        tags = [f"reason:{reason}", f"topic:{topic}"]
        self._count(DLQ_RECORDS, tags)
        if reason in REASON_COUNTERS:
            self._count(REASON_COUNTERS[reason], tags)

    def expired(self, n: int) -> None:
        if n:
            self._count(EXPIRED, n=n)

    def window_closed(self, partition: int, compared: int, match_rate: float | None) -> None:
        if self.client is None:
            return
        tags = [f"partition:{partition}"]
        self.client.gauge(WINDOW_COMPARED, compared, tags=tags)
        if match_rate is not None:
            self.client.gauge(WINDOW_MATCH_RATE, match_rate, tags=tags)

    def verified_age(self, table: str, seconds: float) -> None:
        """How old a table's verified-through time is on this worker's partitions (``core.progress``): a
        monitor takes the largest over the workers."""
        if self.client is not None:
            self.client.gauge(VERIFIED_AGE, round(seconds, 3), tags=[self.table_tag(table)])

    def transaction_shortfall(self, table: str, missing: int) -> None:
        """Changes a committed transaction made to ``table`` that never reached dqhash (``core.transactions``)."""
        self._count(TRANSACTION_SHORTFALL, [self.table_tag(table)], missing)

    def _count(self, name: str, tags: list[str] | None = None, n: int = 1) -> None:
        if self.client is None:
            return
        if self._in_batch:
            self._held[name, tuple(tags) if tags else ()] += n
        else:
            self.client.increment(name, n, tags=tags)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold counters and samples through the block, and hand them over once ``hand_over_s`` has passed since
        the last time: each (name, tags) once, counters with their sum, distribution samples packed."""
        if self._in_batch:
            yield
            return
        self._in_batch = True
        try:
            yield
        finally:
            self._in_batch = False
            if time.monotonic() - self._handed_over >= self.hand_over_s:
                self.hand_over()

    def hand_over(self) -> None:
        """Give the client every tally and sample held so far (it sends them with its next flush)."""
        self._handed_over = time.monotonic()
        if self.client is None:
            return
        self._fold_verdicts()
        held, self._held = self._held, Counter()
        samples, self._samples = self._samples, {}
        for (name, tags), n in held.items():
            self.client.increment(name, n, tags=list(tags) or None)
        for (name, tags), values in samples.items():
            for start in range(0, len(values), PACKED_SAMPLES):
                # the client formats the value with str(): a packed value is a protocol v1.1 line
                self.client.distribution(
                    name, ":".join(map(str, values[start : start + PACKED_SAMPLES])), tags=list(tags)
                )

    def _fold_verdicts(self) -> None:
        """The batch's verdict tallies as the counters and samples each verdict stands for."""
        held = self._held
        for (status, late, on_time, table_tag), n in self._verdicts.items():
            tags = (f"status:{status}", table_tag)
            held[STATUS_COUNTERS[status], tags] += n
            if status in DELETE_STATUSES and status != "SKIPPED_DELETE" and not late:
                held[DELETE_COUNT, tags] += n
            if late:
                held[LATE, tags] += n
            else:
                held[CLASSIFIED, tags] += n
                if on_time:
                    held[CLASSIFIED_ON_TIME, tags] += n
        for status, values in self._times.items():
            self._samples.setdefault((TIME_TO_CLASSIFY, (f"status:{status}",)), []).extend(values)
        self._verdicts.clear()
        self._times.clear()

    def looked_up(self, found: bool, attempt: int) -> None:
        self._count(LOOKUPS, [f"found:{str(found).lower()}", f"recheck:{str(attempt > 0).lower()}"])

    def lookup_coalesced(self) -> None:
        self._count(LOOKUPS_COALESCED)

    def lookup_failed(self, reason: str) -> None:
        self._count(LOOKUP_FAILED, [f"reason:{reason}"])
        if reason == "CASSANDRA_TIMEOUT":
            self._count(CASSANDRA_TIMEOUT)

    def partial_row(self) -> None:
        self._count(PARTIAL_ROW)

    def schema_drift(self, column: str, table: str = "default") -> None:
        self._count(SCHEMA_DRIFT, [f"column:{column}", self.table_tag(table)])  # table columns: a small, fixed set

    def column_removed(self, column: str, table: str = "default") -> None:
        self._count(COLUMN_REMOVED, [f"column:{column}", self.table_tag(table)])

    def repair_requested(self, status: str, table: str = "default") -> None:
        self._count(REPAIR_REQUESTS, [f"status:{status}", self.table_tag(table)])

    def withdrawn(self, counted: str, table: str = "default") -> None:
        self._count(WITHDRAWN, [f"status:{counted}", self.table_tag(table)])

    def check_agent(self) -> None:
        """Says once that DogStatsD answers again after an outage (called with the periodic status report)."""
        self.agent.check(log)

    def flush(self) -> None:
        """Sends what the client aggregated and buffered (its thread does it every 0.3 s; this is for shutdown)."""
        if self.client is not None:
            try:
                self.hand_over()
                self.client.flush_aggregated_metrics()
                self.client.flush()
            except Exception:  # a metrics problem must never break shutdown
                log.warning("could not flush DogStatsD buffer", exc_info=True)

    def close(self) -> None:
        self.flush()
        if self.client is not None:
            self.client.close_socket()
            logging.getLogger("datadog.dogstatsd").removeFilter(self.agent)
