"""The Debezium reader's agent: change topics chosen by a pattern → the Topic-1 records of their catalog tables.

Runs in workers that reconcile, when DQHASH_DEBEZIUM_TOPICS names a pattern. Each change becomes the on-prem
record of the existing contract (``core.debezium``), keyed by its pair key, and goes to Topic-1, where the
reconciler reads it like any producer's; a change it cannot read, or cannot verify exactly, goes to the DLQ
with its reason. The agent writes no table, so it takes its records in batches; a batch is produced before it is
acknowledged, so a crash reads it again and the Topic-1 records it sends again are the same events.

A change topic partition is read in commit order, so after a batch the agent knows how far it has sent each
table's changes: it writes that to every Topic-1 partition as a progress mark (``core.progress``) at most once a
second, and again every few seconds, which is what each table's "verified through" time rests on.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

import orjson

from dqhash.agents.debezium_idle import register_quiet_tables
from dqhash.agents.debezium_runs import ConnectorRuns
from dqhash.core.catalog import TableSpec
from dqhash.core.debezium import Refusal, Tombstone, Truncate, onprem_record, read_change, refuse
from dqhash.core.hashing import RowHasher
from dqhash.core.idle_time import KafkaThrough
from dqhash.core.input_records import Reason, Rejection
from dqhash.core.outputs import dlq_headers
from dqhash.core.partitioning import partition_for
from dqhash.core.progress import Progress, progress_record
from dqhash.core.record_keys import canonical_pk
from dqhash.core.records import Out
from dqhash.core.table_keys import pair_key
from dqhash.core.timeutil import format_ms, now_ms
from dqhash.core.transactions import KEPT, Completeness, Shortfall, TransactionEvent
from dqhash.core.truncates import RecentKeys, delete_record
from dqhash.core.tuples import build
from dqhash.core.wire import is_framed, split_frame
from dqhash.kafka import schema_registry
from dqhash.kafka.topics import partition_counts, topics_matching

if TYPE_CHECKING:
    from dqhash.runtime import Runtime

log = logging.getLogger("dqhash.agents.debezium")
#: changes taken at once from the change topics
BATCH = 1_000
#: the slot's last confirmations kept (``agents.debezium_idle``): a high watermark is fetched between two of them
CONFIRMATIONS_KEPT = 4
#: progress marks are written at most this often, and at least this often once there are any (seconds)
MARK_EVERY_S, MARK_AGAIN_S = 1.0, 5.0


class DebeziumReader:
    """Change records → Topic-1 records and dead letters; one hasher per table, built once."""

    def __init__(
        self, settings: Any, partitions: dict[str, int] | None = None, metrics: Any = None, registry: Any = None
    ) -> None:
        self.settings, self.catalog, self.metrics = settings, settings.catalog, metrics
        #: the Schema Registry (``kafka.schema_registry``) that reads Avro change topics, when one is configured
        self.registry = registry
        #: each transaction's changes per table against its END (``core.transactions``)
        self.completeness = Completeness()
        self._said_stopped = False
        #: table → changes found missing by completeness since the worker started (the tables views show it)
        self.shortfalls: Counter[str] = Counter()
        self._hashers: dict[str, RowHasher] = {}
        self.tombstones = 0
        #: change topic → its partition count: a table's mark counts once each of its source partitions spoke
        self.partitions = partitions or {}
        #: (source partition "topic:partition", table) → the newest commit time of a change sent from it, and of
        #: one read. A mark speaks only for changes already handed to the producer: it is queued after them, and
        #: the producer keeps one batch in flight per partition, so a mark never lands before its changes
        self.sent_through: dict[tuple[str, str], int] = {}
        self._read_through: dict[tuple[str, str], int] = {}
        self._marked_at = 0.0
        self._marked: dict[tuple[str, str], int] = {}
        #: the connector's snapshots and truncates being read, as snapshot runs (``agents.debezium_runs``)
        self.runs = ConnectorRuns(settings, self.partitions)
        #: the keys each table changed lately, which a truncate deletes (``core.truncates``)
        self.recent = RecentKeys(truncate_horizon_ms(settings))
        #: change topic partition ("topic:partition") → the next offset to read, once what came before is produced
        self.processed: dict[str, int] = {}
        #: what the replication slot says is in Kafka (``core.idle_time``), and (that time, when it was confirmed)
        self.kafka = KafkaThrough()
        self.confirmed: deque[tuple[int, int]] = deque(maxlen=CONFIRMATIONS_KEPT)

    def hasher(self, spec: TableSpec) -> RowHasher:
        hasher = self._hashers.get(spec.name)
        if hasher is None:
            hasher = self._hashers[spec.name] = RowHasher(spec.hash_strategy, spec.columns, spec.types)
        return hasher

    def read(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
             headers: Any) -> list[Out]:  # fmt: skip
        """The Topic-1 record of one change record, or its dead letter; nothing for a tombstone; for a record of
        the transaction topic, the shortfalls it reveals (``core.transactions``)."""
        settings = self.settings
        found = list(headers or ())
        key_doc, value_doc = self._unframed(key), self._unframed(value)
        undecoded = next((d for d in (value_doc, key_doc) if isinstance(d, Rejection)), None)
        change = undecoded or read_change(
            key_doc, value_doc, found, topic, self.catalog, settings.debezium_binary_handling
        )
        if isinstance(change, Tombstone):
            self.tombstones += 1
            return []
        if isinstance(change, TransactionEvent):
            return self._shortfalls(self.completeness.ended(change))
        source = f"{topic}:{partition}"
        if isinstance(change, Truncate):
            self._read_to((source, change.table), change.source_ts)
            shortfalls = self._shortfalls(self.completeness.change(change.table, change.transaction))
            return [*self._truncated(change, source), *shortfalls]
        if not isinstance(change, Refusal):
            spec = self.catalog.get(change.table)
            pk = pair_key(change.table, canonical_pk(list(change.key)), self.catalog.default)
            snapshot_id, before, after = self.runs.for_change(change, pk, source)
            made = onprem_record(change, spec, self.hasher(spec), snapshot_id) if spec is not None else None
            if isinstance(made, dict):
                if change.op != "r":  # a snapshot read's time is a read's, not a commit's: older changes may follow
                    self._read_to((source, change.table), change.source_ts)
                    self.recent.note(change.table, pk, change.key, change.source_ts)
                out = build(Out, (settings.onprem_topic, pk.encode(), orjson.dumps(made), None,
                                  partition_for(pk, settings.partitions) if snapshot_id else None))  # fmt: skip
                shortfalls = self._shortfalls(self.completeness.change(change.table, change.transaction))
                return [*before, out, *after, *shortfalls]
            change = made if made is not None else refuse("UNKNOWN_TABLE", "no catalog entry", change.table)
        reason = str(change.reason)
        log.warning("change %s[%d]@%d refused (%s): %s", topic, partition, offset, reason, change.message)
        headers_out = dlq_headers(reason, change.message, topic, partition, offset, found, change.table)
        refused = Out(settings.dlq_topic, key, value or b"", headers_out)
        if change.table is None:
            return [refused]
        return [
            refused,
            *self._shortfalls(self.completeness.change(change.table, change.transaction)),
        ]

    def _read_to(self, source: tuple[str, str], commit_ts: int) -> None:
        """A change committed at ``commit_ts`` read from ``source`` (its topic partition and table)."""
        if commit_ts > self._read_through.get(source, -1):
            self._read_through[source] = commit_ts

    def _truncated(self, truncate: Truncate, source: str) -> list[Out]:
        """A truncate: the DELETE of every key the table changed lately (``core.truncates``), within its run of no
        rows (``ConnectorRuns.truncated``)."""
        table = truncate.table
        covered, lost = self.recent.truncated(table, truncate.source_ts)
        if lost:
            log.warning(
                "the truncate of %s deletes the %d key(s) changed last; %d changed before them are not covered, and a "
                "verdict on one of those may be a false MISSING_CLOUD", table, len(covered), lost,
            )  # fmt: skip
        topic = self.settings.onprem_topic
        deletes = [
            Out(topic, pk.encode(), orjson.dumps(delete_record(table, truncate.position, r.key, truncate.source_ts)))
            for pk, r in covered
        ]
        return self.runs.truncated(truncate, source, deletes)

    async def prepare(self, records: list[tuple[bytes | None, bytes | None]]) -> None:
        """Fetch the schemas of a batch's Avro keys and values, together, before it is read."""
        ids = {frame[0] for raw in itertools.chain.from_iterable(records) if is_framed(raw)
               for frame in (split_frame(raw),) if frame is not None}  # type: ignore[arg-type]  # fmt: skip
        if ids and self.registry is not None:
            await self.registry.fetch(ids)

    def _unframed(self, raw: bytes | None) -> Any:
        """A key or value in Confluent's wire format as its decoded document, or why it cannot be; else as it is."""
        if not is_framed(raw):
            return raw
        if self.registry is None:
            return refuse(
                Reason.UNDECODABLE.value,
                "an Avro (Schema Registry) change record and no registry is configured: set DQHASH_SCHEMA_REGISTRY_URL",
            )
        decoded = self.registry.connect_record(raw)
        return refuse(decoded.reason.value, decoded.message) if isinstance(decoded, Rejection) else decoded

    def _shortfalls(self, found: list[Shortfall]) -> list[Out]:
        """Each shortfall as a ``completeness`` record on the metrics topic, a counter and a log line."""
        outs = []
        if self.completeness.stopped and not self._said_stopped:
            self._said_stopped = True
            log.warning(
                "transaction completeness stopped: more than %d changes waited for their transaction's END; read "
                "the connector's <topic.prefix>.transaction topic too (DQHASH_DEBEZIUM_TOPICS)",
                KEPT,
            )
        for shortfall in found:
            missing = shortfall.expected - shortfall.seen
            self.shortfalls[shortfall.table] += missing
            log.warning(
                "table %s: transaction %s committed %d change(s) to it, %d reached dqhash: %d missing",
                shortfall.table, shortfall.transaction, shortfall.expected, shortfall.seen, missing,
            )  # fmt: skip
            if self.metrics is not None:
                self.metrics.transaction_shortfall(shortfall.table, missing)
            record = {
                "type": "completeness",
                **shortfall._asdict(),
                "missing": missing,
                "detected_at": format_ms(now_ms()),
            }
            outs.append(
                Out(self.settings.metrics_topic, f"completeness:{shortfall.table}".encode(), orjson.dumps(record))
            )
        return outs

    def sent(self) -> None:
        """The changes read so far are produced: the marks may speak for them."""
        for source, through in self._read_through.items():
            if through > self.sent_through.get(source, -1):
                self.sent_through[source] = through

    def quiet(self, source: str, through: int) -> list[Out]:
        """Every change committed before ``through`` that ``source`` will ever hold has been read and sent: its
        tables' marks move there (``core.idle_time``), those seen on it, else the table its topic is named for; a
        snapshot run read from it before then is over. The end of those runs, to produce."""
        tables = {table for src, table in self._read_through if src == source}
        if not tables:
            topic = source.rpartition(":")[0]
            named = self.catalog.get(".".join(topic.rsplit(".", 2)[-2:]))
            tables = {named.name} if named is not None else set()
        for table in tables:
            self._read_to((source, table), through)
            if through > self.sent_through.get((source, table), -1):
                self.sent_through[(source, table)] = through
        return self.runs.quiet(source, through)

    def marks(self, now: float) -> list[Out]:
        """A progress record for every Topic-1 partition, when something moved a second ago or more, or when
        the last were sent MARK_AGAIN_S ago (a new owner of a Topic-1 partition learns the marks again)."""
        moved = self.sent_through != self._marked
        if not self.sent_through or now - self._marked_at < (MARK_EVERY_S if moved else MARK_AGAIN_S):
            return []
        self._marked_at, self._marked = now, dict(self.sent_through)
        marks = [
            Progress(table, source, self.partitions.get(source.rpartition(":")[0], 1), through)
            for (source, table), through in sorted(self.sent_through.items())
        ]
        value = orjson.dumps(progress_record(marks))
        topic = self.settings.onprem_topic
        return [build(Out, (topic, b"progress", value, None, p)) for p in range(self.settings.partitions)]


def truncate_horizon_ms(settings: Any) -> int:
    """How long a change may wait for its final verdict: its window, the grace, the lookup delay, the rechecks and
    the wait for an answer, with the grace again to spare. A truncate deletes the keys changed within it."""
    rechecks = settings.rechecks * (settings.rechecks + 1) // 2 * settings.recheck_backoff_ms
    return settings.window_ms + 2 * settings.grace_ms + settings.lookup_delay_ms + rechecks + settings.answer_wait_ms


def register(runtime: Runtime) -> Any:
    """The agent on the change topics that match DQHASH_DEBEZIUM_TOPICS now (none: no agent, and a warning), and
    the timer that sends its progress marks again."""
    app, settings, outputs = runtime.app, runtime.settings, runtime.outputs
    names = topics_matching(settings, settings.debezium_topics)
    if not names:
        log.warning(
            "no topic matches DQHASH_DEBEZIUM_TOPICS=%r yet: no change topic is read; restart the workers once the "
            "connector has created its topics",
            settings.debezium_topics,
        )
        return None
    log.info("reading Debezium change topics %s", ", ".join(names))
    changes = app.topic(*names, key_serializer="raw", value_serializer="raw")
    reader = runtime.parts["debezium_reader"] = DebeziumReader(
        settings, partition_counts(settings, names), runtime.metrics, schema_registry.from_settings(settings)
    )

    async def debezium_changes(stream: Any) -> None:
        """Read Debezium change events; publish each as its table's Topic-1 record."""
        async for events in stream.take_events(BATCH, within=0.2):
            await reader.prepare([(event.message.key, event.message.value) for event in events])
            outs = []
            for event in events:
                message = event.message
                try:
                    outs += reader.read(
                        message.topic, message.partition, message.offset, message.key, message.value, message.headers
                    )
                except Exception as exc:  # one bad change never stops the reader: dead-lettered, the batch goes on
                    log.exception("error reading change %s[%d]@%d", message.topic, message.partition, message.offset)
                    headers = dlq_headers("PROCESSING_ERROR", f"{type(exc).__name__}: {exc}"[:500], message.topic,
                                          message.partition, message.offset, message.headers)  # fmt: skip
                    outs.append(Out(settings.dlq_topic, message.key, message.value or b"", headers))
            await outputs.produce(outs)
            reader.sent()
            for event in events:
                message = event.message
                reader.processed[f"{message.topic}:{message.partition}"] = message.offset + 1
            await outputs.produce(reader.marks(time.monotonic()))  # after the changes they speak for

    async def mark_again() -> None:
        """Marks sent again while no change comes, so a new owner of a Topic-1 partition learns them."""
        await outputs.produce(reader.marks(time.monotonic()))

    app.timer(MARK_AGAIN_S, name=f"{__name__}.mark_again")(mark_again)
    register_quiet_tables(runtime, reader, set(names))

    return app.agent(changes, name=f"{__name__}.debezium_changes", concurrency=1)(debezium_changes)
