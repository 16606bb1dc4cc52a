"""Throughput of the pure domain (parse, hash, classify) on one core.

Each figure is printed next to a floor measured in the same run on the same
data — bare ``orjson.loads`` + ``hashlib.sha256`` per record — so the ratio,
not the absolute number, is what to compare across noisy machines.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import orjson

from dqhash.core import compiled_hasher
from dqhash.core.classify import on_cloud, on_onprem
from dqhash.core.contracts import parse_cloud, parse_onprem
from dqhash.core.hashing import RowHasher
from dqhash.core.pair_state import Rules
from dqhash.core.records import Input

T0 = 1_714_564_800_000


def sample_rows(n: int) -> list[dict]:
    """Rows shaped like a typical customer table: text, numbers, decimal, timestamp, set."""
    base = datetime(2024, 5, 1)
    return [
        {
            "id": i,
            "name": f"customer-{i}",
            "email": f"c{i}@example.com",
            "balance": Decimal(i) / 100,
            "score": i * 0.5,
            "active": i % 2 == 0,
            "updated_at": base + timedelta(seconds=i),
            "tags": {"a", "b"} if i % 3 else None,
        }
        for i in range(n)
    ]


#: the 9-column typed row of ``dqhash bench --source``'s table, as the hasher's type declarations
TYPED_COLUMNS = {"id": "bigint", "name": "text", "email": "text", "balance": "decimal", "score": "double",
                 "active": "boolean", "updated_at": "timestamp", "born": "date", "tags": "list<text>"}  # fmt: skip


def typed_rows(n: int) -> list[dict]:
    """Rows of TYPED_COLUMNS as the source reader returns them (a timestamptz is an aware datetime)."""
    base, born = datetime(2024, 5, 1, tzinfo=UTC), date(1990, 1, 1)
    return [
        {"id": i, "name": f"customer-{i}", "email": f"c{i}@example.com", "balance": Decimal(i % 100_000) / 100,
         "score": i * 0.5, "active": i % 2 == 0, "updated_at": base + timedelta(seconds=i),
         "born": born + timedelta(days=i % 10_000), "tags": None if i % 3 == 0 else ["a", "b"]}
        for i in range(1, n + 1)
    ]  # fmt: skip


def hasher_rates(n: int) -> dict[str, float]:
    """Rows/s of the hasher (hash and per-column digests, as publish and scan call it) on the 9-column typed row:
    the compiled path and the pure-Python reference in the same run (the reference alone where not built)."""
    rows = typed_rows(n)
    reference = rate(
        n, lambda: _consume(map(RowHasher("v2", None, TYPED_COLUMNS, compiled=False).hash_and_digests, rows))
    )
    figures = {
        "hasher_typed_reference_rows_per_s": reference,
        "hasher_compiled_built": float(compiled_hasher.AVAILABLE),
    }
    if compiled_hasher.AVAILABLE:
        compiled = rate(
            n, lambda: _consume(map(RowHasher("v2", None, TYPED_COLUMNS, compiled=True).hash_and_digests, rows))
        )
        figures.update(hasher_typed_compiled_rows_per_s=compiled, hasher_compiled_speedup=compiled / reference)
    return figures


def sample_messages(n: int) -> tuple[list[bytes], list[bytes]]:
    onprem, cloud = [], []
    for i in range(n):
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        onprem.append(
            orjson.dumps(
                {
                    "event_id": f"e-{i}",
                    "hash_onprem": digest,
                    "partitionColumns": [{"type": "PK", "value": str(i)}],
                    "event_ts": T0 + i,
                    "action": "UPDATE",
                }
            )
        )
        cloud.append(orjson.dumps({"pk": str(i), "hash_cloud": digest, "cloud_ts": T0 + i + 5}))
    return onprem, cloud


def rate(n: int, fn: Callable[[], object]) -> float:
    """Records per second of ``fn`` over ``n`` records, best of three runs."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def _consume(items: Iterable[object]) -> None:
    for _ in items:
        pass


def run(n: int = 100_000) -> dict[str, float]:
    onprem, cloud = sample_messages(n)
    rows = sample_rows(n)
    hasher = RowHasher("v2")
    rules = Rules()
    loads, sha256 = orjson.loads, hashlib.sha256

    def floor() -> None:
        for raw in onprem:
            loads(raw)
            sha256(raw).hexdigest()

    def classify() -> None:
        states: dict = {}
        for event, seen in zip(events, clouds):
            states[event.pk] = on_onprem(states.get(event.pk), event, T0, rules).state
            states[event.pk] = on_cloud(states[event.pk], seen, T0, rules).state

    events = [parse_onprem(raw) for raw in onprem]
    clouds = [parse_cloud(raw) for raw in cloud]
    figures = {
        "floor_loads_sha256_per_s": rate(n, floor),
        "parse_onprem_per_s": rate(n, lambda: _consume(map(parse_onprem, onprem))),
        "parse_cloud_per_s": rate(n, lambda: _consume(map(parse_cloud, cloud))),
        "hash_v2_rows_per_s": rate(n, lambda: _consume(map(hasher.hash, rows))),
        "classify_pairs_per_s": rate(n, classify),
    }
    figures.update(hasher_rates(min(n, 50_000)))
    figures.update(_debezium_rates(min(n, 50_000)))
    figures["reconcile_records_per_s"] = _reconcile_rate(onprem, cloud)
    figures["producer_lookups_sqlite_per_s"] = _lookup_rate(min(n, 20_000))
    figures.update(_pending_sweep(min(n, 40_000)))
    floor_rate = figures["floor_loads_sha256_per_s"]
    for key in list(figures):
        if key != "floor_loads_sha256_per_s" and key.endswith("_per_s") and not key.startswith("hasher_"):
            figures[key.replace("_per_s", "_ratio_to_floor")] = figures[key] / floor_rate
    return figures


def _pending_sweep(pending: int) -> dict[str, float]:
    """CPU µs a verdict to sweep pending pairs once due: all kept in memory, and four times as many as
    DQHASH_PENDING_IN_MEMORY keeps (passes over the pair table find the rest: docs/performance.md)."""
    from dqhash.tools.bench.sweep import pending_sweep_us

    in_memory = pending_sweep_us(pending, 1_000_000_000)
    past_bound = pending_sweep_us(pending, max(4_096, pending // 4))
    return {
        "sweep_pending_us_in_memory": in_memory,
        "sweep_pending_us_past_bound": past_bound,
        "sweep_pending_past_bound_ratio": past_bound / in_memory,
    }


def main(n: int, as_json: bool) -> int:
    print_figures(run(n), as_json)
    return 0


def print_figures(figures: dict[str, object], as_json: bool) -> None:
    """One JSON object, or a line a figure: numbers right-aligned with thousands separators."""
    if as_json:
        print(orjson.dumps(figures).decode())
        return
    for key, value in figures.items():
        shown = f"{value:14,.2f}" if isinstance(value, float) else f"{value:>14,}" if type(value) is int else value
        print(f"{key:40s} {shown}")


def _debezium_rates(n: int) -> dict[str, float]:
    """Changes/s of the Debezium reader (JSON with schemas → the Topic-1 record: read, convert every semantic type,
    hash), next to the bare hasher on the same rows converted once: the reader's own cost is the difference."""
    import base64

    from dqhash.core.catalog import parse_catalog
    from dqhash.core.debezium import onprem_record, read_change

    catalog = parse_catalog(
        '[[table]]\nname = "inventory.customers"\ncloud = "ks.c"\nkey = ["id"]\n'
        'columns = ["id", "name", "amount", "updated_at", "born"]\n'
        'types = { id = "int", amount = "decimal", updated_at = "timestamp", born = "date" }\n'
    )
    spec = catalog.get("inventory.customers")
    fields = [
        {"field": "id", "type": "int32"},
        {"field": "name", "type": "string"},
        {
            "field": "amount",
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "2"},
        },
        {"field": "updated_at", "type": "int64", "name": "io.debezium.time.MicroTimestamp"},
        {"field": "born", "type": "int32", "name": "io.debezium.time.Date"},
    ]
    schema = {"type": "struct", "fields": [{"field": "after", "type": "struct", "fields": fields}]}
    source = {"schema": "inventory", "table": "customers", "lsn": 1, "ts_ms": T0}
    changes = []
    for i in range(n):
        row = {"id": i, "name": f"customer {i}", "amount": base64.b64encode((i * 7 + 1050).to_bytes(4, "big")).decode(),
               "updated_at": (T0 + i) * 1000, "born": 19000 + i % 100}  # fmt: skip
        payload = {"before": None, "after": row, "source": {**source, "lsn": i}, "op": "u", "ts_ms": T0}
        changes.append((orjson.dumps({"id": i}), orjson.dumps({"schema": schema, "payload": payload})))
    hasher = RowHasher(spec.hash_strategy, spec.columns, spec.types)

    def read_all() -> None:
        for key, value in changes:
            onprem_record(read_change(key, value, None, "dbserver1.inventory.customers", catalog), spec, hasher)  # type: ignore[arg-type]

    converted = [read_change(k, v, None, "t", catalog).row for k, v in changes]  # type: ignore[union-attr]
    reader = rate(n, read_all)
    bare = rate(n, lambda: _consume(map(hasher.hash_and_digests, converted)))  # type: ignore[arg-type]
    return {
        "debezium_changes_per_s": reader,
        "debezium_bare_hasher_rows_per_s": bare,
        "debezium_share_of_hasher": reader / bare,
    }


def _reconcile_rate(onprem: list[bytes], cloud: list[bytes], batch: int = 500) -> float:
    """Records/s through ``Reconciler.process`` — parse, state, classify, audit and changelog records, metrics —
    on a dict table: the worker's work without Kafka. Each pair's on-prem event, then its cloud hash (a MATCH)."""
    from dqhash.core.records import SOURCE_CLOUD, SOURCE_ONPREM
    from dqhash.engine.reconciler import Reconciler
    from dqhash.ops.dogstatsd import Metrics
    from dqhash.settings import load

    settings = load({})
    sides = [(SOURCE_ONPREM, settings.onprem_topic, onprem), (SOURCE_CLOUD, settings.cloud_topic, cloud)]
    batches = input_batches(settings.partitions, sides, str, batch)
    metrics = Metrics("127.0.0.1", 9, [], enabled=True)  # counters and samples as a worker's (UDP, discarded)

    def reconcile() -> None:
        reconciler = Reconciler(settings, {}, metrics, lambda table, partition: iter(()), clock=lambda: T0 + 10)
        audits = 0
        for records in batches:
            audits += sum(out.topic == settings.audit_topic for out in reconciler.process(records))
        if audits != len(cloud):  # a figure for work not done would be no figure
            raise RuntimeError(f"the reconcile bench classified {audits} of {len(cloud)} pairs")

    try:
        return rate(len(onprem) + len(cloud), reconcile)
    finally:
        metrics.close()


def input_batches(
    partitions: int, sides: list[tuple[int, str, list[bytes]]], pk_of: Callable[[int], str], batch: int = 500
) -> list[list[Input]]:
    """Each side's records (its source, topic, values) in their PK's partition (``pk_of`` the record's number),
    with offsets of their own per partition, in batches of ``batch``: as a worker's agents hand them over."""
    from dqhash.core.partitioning import partition_for

    offsets: dict[tuple[int, int], int] = {}
    batches = []
    for source, topic, records in sides:
        made = []
        for i, value in enumerate(records):
            pk = pk_of(i)
            partition = partition_for(pk, partitions)
            offset = offsets[source, partition] = offsets.get((source, partition), -1) + 1
            made.append(Input(source, topic, partition, offset, pk.encode(), value, [], T0))
        batches += [made[start : start + batch] for start in range(0, len(made), batch)]
    return batches


def _lookup_rate(n: int) -> float:
    """Lookups/s through the cloud hash producer (read by PK + hash + record) against a SQLite store."""
    import asyncio
    import sqlite3
    import tempfile
    from pathlib import Path

    from dqhash.cloud.hash_reader import CloudHashReader
    from dqhash.cloud.sqlite import SQLiteStore
    from dqhash.cloud.tables import CloudTables
    from dqhash.core.lookups import LookupRequest
    from dqhash.ops.dogstatsd import Metrics

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cloud.db"
        connection = sqlite3.connect(path)
        connection.execute("CREATE TABLE rows (id TEXT PRIMARY KEY, name TEXT, amount TEXT, updated_at TEXT)")
        connection.executemany(
            "INSERT INTO rows VALUES (?, ?, ?, ?)",
            [(str(i), f"customer {i}", f"{i}.50", "2024-05-01T12:00:00Z") for i in range(n)],
        )
        connection.commit()
        producer = CloudHashReader(
            CloudTables.single(
                SQLiteStore(path, "rows", ["id"]),
                RowHasher(
                    "v2", ["id", "name", "amount", "updated_at"], {"amount": "decimal", "updated_at": "timestamp"}
                ),
            ),
            "topic2",
            "dlq",
            "metrics",
            "lookups",
            Metrics("127.0.0.1", 9, [], enabled=False),
            clock=lambda: T0,
        )
        requests = [LookupRequest(str(i), 0, 0, b"", 0, i) for i in range(n)]

        async def serve() -> None:
            for start in range(0, n, 128):
                await producer.handle(requests[start : start + 128])

        rate_ = rate(n, lambda: asyncio.run(serve()))
        connection.close()
        return rate_
