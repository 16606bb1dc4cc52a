"""Audit rows in Cassandra: every audit record, upserted idempotently by ``audit_id``.

The sink reads the audit topic with its own consumer group
(``<app>-audit-cassandra``) and commits only after a batch is written, so a
Cassandra outage shows up as consumer lag — delayed writes, nothing lost, and
reconciliation untouched (it runs in other consumers). A record that still
fails after the retries goes to the DLQ with its reason and the sink moves on.

Partitions stay bounded: ``audit_by_day`` is keyed by (event day, shard), the
shard derived from ``audit_id``; ``audit_by_pk`` answers "history of this key".
Both use a TTL and TimeWindowCompactionStrategy. The CQL is in
``docs/cassandra-audit.cql`` (generated from :func:`schema`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from dqhash.cloud.cassandra import RetriesExhausted, bridge, retrying
from dqhash.core.audit_schema import AUDIT_COLUMNS, AUDIT_FIELDS

log = logging.getLogger(__name__)

#: the audit record's fields, as columns (``core.audit_schema``)
COLUMNS = AUDIT_COLUMNS
#: the audit tables: every field of the record, and their keys
TABLES = ("audit_by_day", "audit_by_pk")


def schema(keyspace: str, ttl_days: int = 90, shards: int = 16, replication: str | None = None) -> list[str]:
    ttl = ttl_days * 86_400
    twcs = "{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}"
    body = ", ".join(f"{f.column} {f.cql}" for f in AUDIT_FIELDS)
    statements = []
    if replication:
        statements.append(f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}")
    statements += [
        f"CREATE TABLE IF NOT EXISTS {keyspace}.audit_by_day (day date, shard smallint, {body}, "
        f"PRIMARY KEY ((day, shard), audit_id)) "
        f"WITH default_time_to_live = {ttl} AND compaction = {twcs} "
        f"AND comment = 'dqhash audit rows; {shards} shards per day'",
        f"CREATE TABLE IF NOT EXISTS {keyspace}.audit_by_pk ({body}, "
        f"PRIMARY KEY ((pk), event_ts, audit_id)) WITH CLUSTERING ORDER BY (event_ts DESC, audit_id ASC) "
        f"AND default_time_to_live = {ttl} AND compaction = {twcs}",
    ]
    return statements


def migration(keyspace: str, existing: Mapping[str, Iterable[str]]) -> list[str]:
    """``ALTER TABLE … ADD`` for each field a table of an earlier version lacks (``existing``: table → its
    columns); none when the tables are current, so running it again changes nothing."""
    statements = []
    for table in TABLES:
        have = set(existing.get(table, ()))
        statements += [
            f"ALTER TABLE {keyspace}.{table} ADD {f.column} {f.cql}" for f in AUDIT_FIELDS if f.name not in have
        ]
    return statements


def migrate(session: Any, keyspace: str) -> list[str]:
    """Bring existing audit tables to the current record (``dqhash cassandra migrate``); returns what it ran.

    The tables' columns come from the driver's schema metadata; a missing keyspace or table is an error that
    says to start a worker with DQHASH_CASSANDRA_AUDIT=true, which creates them whole."""
    metadata = session.cluster.metadata
    space = metadata.keyspaces.get(keyspace)
    if space is None or any(t not in space.tables for t in TABLES):
        raise LookupError(
            f"no audit tables {', '.join(TABLES)} in keyspace {keyspace!r}: a worker with DQHASH_CASSANDRA_AUDIT=true "
            "creates them (nothing to migrate)"
        )
    statements = migration(keyspace, {t: space.tables[t].columns for t in TABLES})
    for statement in statements:
        session.execute(statement)
    return statements


def _value(cql: str, value: Any) -> Any:
    """A JSON audit field as the driver binds its column."""
    if value is None:
        return [] if cql.startswith("list<") else None
    if cql == "timestamp":
        return _instant(value)
    if cql in ("int", "bigint"):
        return int(value)
    return value


class AuditWriteFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class CassandraAuditSink:
    """Writes audit records through prepared, idempotent INSERTs (an INSERT is an upsert)."""

    def __init__(
        self,
        session,
        keyspace: str,
        shards: int = 16,
        retries: int = 3,
        backoff_s: float = 0.2,
        timeout_s: float = 5.0,
        create_schema: bool = True,
        ttl_days: int = 90,
    ) -> None:
        self.session, self.keyspace, self.shards = session, keyspace, shards
        self.retries, self.backoff_s, self.timeout_s = retries, backoff_s, timeout_s
        if create_schema:
            for statement in schema(keyspace, ttl_days, shards):
                session.execute(statement)
        placeholders = ", ".join("?" for _ in COLUMNS)
        names = ", ".join(COLUMNS)
        self.by_day = session.prepare(
            f"INSERT INTO {keyspace}.audit_by_day (day, shard, {names}) VALUES (?, ?, {placeholders})"
        )
        self.by_pk = session.prepare(f"INSERT INTO {keyspace}.audit_by_pk ({names}) VALUES ({placeholders})")
        for statement in (self.by_day, self.by_pk):
            statement.is_idempotent = True

    def bind_values(self, record: dict) -> tuple[list[Any], list[Any]]:
        """The (audit_by_day, audit_by_pk) values: deterministic, so a redelivery upserts the same rows."""
        event_ts = _instant(record["event_ts"])
        shard = int(hashlib.sha256(record["audit_id"].encode()).hexdigest()[:8], 16) % self.shards
        values = [_value(f.cql, record.get(f.name)) for f in AUDIT_FIELDS]
        day = event_ts.astimezone(UTC).date()
        return [day, shard, *values], values

    async def write(self, record: dict) -> None:
        by_day, by_pk = self.bind_values(record)
        for statement, values in ((self.by_day, by_day), (self.by_pk, by_pk)):
            await self._execute(statement, values)

    async def _execute(self, statement, values: Sequence[Any]) -> None:
        def write():
            return bridge(self.session.execute_async(statement.bind(list(values)), timeout=self.timeout_s))

        try:
            await retrying(write, self.retries, self.backoff_s)
        except RetriesExhausted as exc:
            raise AuditWriteFailed("AUDIT_WRITE_TIMEOUT", str(exc)) from exc
        except Exception as exc:
            raise AuditWriteFailed("AUDIT_WRITE_FAILED", f"{type(exc).__name__}: {exc}") from exc


class AuditSinkRunner:
    """Audit topic → Cassandra, with its own consumer group; commits after each written batch."""

    def __init__(
        self,
        sink: CassandraAuditSink,
        kafka: Mapping[str, Any],
        audit_topic: str,
        group_id: str,
        send_dlq: Callable[[bytes | None, bytes, list[tuple[str, bytes]]], Any],
        concurrency: int = 32,
    ) -> None:
        self.sink, self.kafka, self.audit_topic, self.group_id = sink, kafka, audit_topic, group_id
        self.send_dlq, self.concurrency = send_dlq, concurrency
        self.written = 0
        self.failed = 0

    async def run(self, stop: asyncio.Event | None = None) -> None:
        from aiokafka import AIOKafkaConsumer

        from dqhash.core.outputs import dlq_headers

        consumer = AIOKafkaConsumer(
            self.audit_topic,
            **self.kafka,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
        )
        await consumer.start()
        limit = asyncio.Semaphore(self.concurrency)
        try:
            while stop is None or not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for tp, messages in batches.items():

                    async def one(message, tp=tp):
                        async with limit:
                            try:
                                await self.sink.write(orjson.loads(message.value))
                                self.written += 1
                            except Exception as exc:  # never lost: dead-lettered with the reason
                                self.failed += 1
                                reason = getattr(exc, "reason", "AUDIT_WRITE_FAILED")
                                log.warning("audit row %s@%d not written (%s): %s", tp, message.offset, reason, exc)
                                await self.send_dlq(
                                    message.key,
                                    message.value,
                                    dlq_headers(
                                        reason, str(exc), tp.topic, tp.partition, message.offset, message.headers
                                    ),
                                )

                    await asyncio.gather(*(one(m) for m in messages))
                if batches:
                    await consumer.commit()
        finally:
            await consumer.stop()
