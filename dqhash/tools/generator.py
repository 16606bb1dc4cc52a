"""``dqhash generate``: a steady stream of on-prem changes and the cloud rows they replicate to, so a stack that
has just come up (docker compose) shows verdicts: mostly matches, some differing rows, some rows missing in the
cloud.

Each case writes the cloud row first (the cloud hash producer reads it by PK when the event arrives), then sends
the on-prem event to Topic-1, hashed by the shared spec over the deployment's hashed columns and types
(DQHASH_HASH_COLUMNS, DQHASH_HASH_TYPES). The cloud store is the one the producer reads (DQHASH_CLOUD_STORE).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
from aiokafka import AIOKafkaProducer

from dqhash.core.hashing import RowHasher
from dqhash.core.partitioning import partition_for
from dqhash.core.timeutil import now_ms
from dqhash.kafka.security import connect_args
from dqhash.settings import Settings


class Case(NamedTuple):
    pk: str
    kind: str  # match | mismatch | missing_cloud
    onprem: dict[str, Any]
    cloud: dict[str, Any] | None  # None: the row never reaches the cloud


def value_for(column: str, cql_type: str | None, number: int, pk: str, key_column: str) -> Any:
    """A value of the column's declared type, as JSON carries it on the on-prem side."""
    if column == key_column:
        return pk
    if cql_type == "decimal":
        return f"{number % 1000}.{number % 100:02d}"
    if cql_type == "timestamp":
        return datetime.fromtimestamp(1_700_000_000 + number, UTC).isoformat()
    if cql_type in ("int", "bigint"):
        return number
    return f"{column} {number}"


def next_case(
    rng: random.Random,
    number: int,
    run_id: str,
    columns: tuple[str, ...],
    types: Mapping[str, str],
    key_column: str,
    mismatch: float,
    missing: float,
) -> Case:
    pk = f"gen-{run_id}-{number:08d}"
    row = {c: value_for(c, types.get(c), number, pk, key_column) for c in columns}
    draw = rng.random()
    if draw < missing:
        return Case(pk, "missing_cloud", row, None)
    if draw < missing + mismatch:
        changed = next((c for c in columns if c != key_column and types.get(c) is None), None)
        cloud = {**row, changed: f"{row[changed]} (changed in the cloud)"} if changed else row
        return Case(pk, "mismatch" if changed else "match", row, cloud)
    return Case(pk, "match", row, dict(row))


def onprem_event(case: Case, hasher: RowHasher, event_ts: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"{case.pk}-e",
            "hash_onprem": str(hasher.hash(case.onprem)),
            "partitionColumns": [{"type": "PK", "value": case.pk}],
            "event_ts": event_ts,
            "action": "UPDATE",
            "column_digests": hasher.column_digests(case.onprem),
        }
    )


class SQLiteWriter:
    def __init__(self, settings: Settings) -> None:
        self.connection = sqlite3.connect(str(settings.sqlite_path), check_same_thread=False)  # one writer at a time
        self.table = settings.sqlite_table

    def write(self, row: dict[str, Any]) -> None:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.connection:
            self.connection.execute(
                f"INSERT OR REPLACE INTO {self.table} ({columns}) VALUES ({marks})", [str(v) for v in row.values()]
            )

    def close(self) -> None:
        self.connection.close()


class CassandraWriter:
    """Rows written with the driver's types (Decimal, datetime), as a replication would; one prepared statement."""

    def __init__(self, settings: Settings, types: Mapping[str, str]) -> None:
        from dqhash.cloud.factory import cassandra_session

        self.session = cassandra_session(settings)
        self.types = dict(types)
        self.table = f"{settings.cassandra_keyspace}.{settings.cassandra_table}"
        self._prepared: Any = None

    def write(self, row: dict[str, Any]) -> None:
        if self._prepared is None:
            marks = ", ".join("?" for _ in row)
            self._prepared = self.session.prepare(f"INSERT INTO {self.table} ({', '.join(row)}) VALUES ({marks})")
        self.session.execute(self._prepared, [self._typed(c, v) for c, v in row.items()])

    def _typed(self, column: str, value: Any) -> Any:
        kind = self.types.get(column)
        if kind == "decimal":
            return Decimal(str(value))
        if kind == "timestamp":
            return datetime.fromisoformat(str(value))
        return value

    def close(self) -> None:
        self.session.cluster.shutdown()


async def generate(
    settings: Settings, rate: float, events: int, mismatch: float, missing: float, key_column: str
) -> dict[str, int]:
    """Sends ``events`` cases (0: until stopped) at ``rate`` a second; returns how many of each kind were sent."""
    columns = tuple(settings.hash_columns or ())
    if key_column not in columns:
        raise ValueError(f"--key-column {key_column} is not among DQHASH_HASH_COLUMNS {list(columns)}")
    from dqhash.core.hashing import parse_type_declarations

    types = parse_type_declarations(settings.hash_types)
    hasher = RowHasher(settings.hash_strategy, list(columns), types)
    writer: SQLiteWriter | CassandraWriter = (
        SQLiteWriter(settings) if settings.cloud_store == "sqlite" else CassandraWriter(settings, types)
    )
    producer = AIOKafkaProducer(**connect_args(settings), linger_ms=5)
    await producer.start()
    rng, run_id, sent = random.Random(), uuid.uuid4().hex[:6], {"match": 0, "mismatch": 0, "missing_cloud": 0}
    started = time.monotonic()
    try:
        number = 0
        while events == 0 or number < events:
            case = next_case(rng, number, run_id, columns, types, key_column, mismatch, missing)
            if case.cloud is not None:
                await asyncio.to_thread(writer.write, case.cloud)
            partition = partition_for(case.pk, settings.partitions)
            await producer.send(
                settings.onprem_topic, onprem_event(case, hasher, now_ms()), key=case.pk.encode(), partition=partition
            )
            sent[case.kind] += 1
            number += 1
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))  # the rate, not a wait for I/O
        await producer.flush()
        return sent
    finally:
        await producer.stop()
        writer.close()
