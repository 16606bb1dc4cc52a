"""More tables for the demo, with known answers: a composite key, a renamed column, PK values shared with others.

Pure: it builds the catalog the demo's worker reads (``CATALOG``), each extra table's cloud rows, its on-prem
changes, and the verdicts a correct pipeline gives each table. The changes come two ways: as Debezium change
events on the table's change topic (``changes``: the envelope with its Connect schema, as Debezium's PostgreSQL
connector writes it, decimals as bytes and timestamps in microseconds), which is what the demo sends and the
worker's Debezium reader turns into Topic-1 records; and as those Topic-1 records themselves (``onprem``, each
naming its table, keyed by its pair key), for tests that feed Topic-1 directly. The demo's first table is the mixed workload of ``tools.workload`` (``shop.customers``, the catalog's
default table, whose records name no table); the extra tables reuse its PK values, so the same PK value is a row
of several tables and must never be paired across them.
"""

from __future__ import annotations

import base64
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dqhash.core.catalog import TableSpec, parse_catalog
from dqhash.core.hashing import RowHasher
from dqhash.core.jsontext import dumps_kept
from dqhash.core.record_keys import canonical_pk
from dqhash.core.table_keys import pair_key

DEFAULT_TABLE = "shop.customers"
#: the demo's catalog: the mixed workload's table, one with a composite key, one with a renamed column
CATALOG = """\
# the demo's tables (docs/catalog.md)
default = "shop.customers"

[[table]]
name = "shop.customers"
cloud = "demo.rows"
key = ["id"]
columns = ["id", "name", "amount", "updated_at"]
types = { amount = "decimal", updated_at = "timestamp" }

[[table]]
name = "shop.orders"
cloud = "demo.orders"
key = ["region", "order_id"]          # partition key region, clustering column order_id
columns = ["region", "order_id", "total", "placed_at"]
types = { order_id = "bigint", total = "decimal", placed_at = "timestamp" }

[[table]]
name = "shop.accounts"
cloud = "demo.accounts"
key = ["id"]
columns = ["id", "email", "plan"]
rename = { email = "email_address" }  # the cloud's name for on-prem's email
"""
#: each extra table's cloud DDL (SQLite, the demo's cloud copy) and the cloud rows' column order
DDL = {
    "shop.orders": "CREATE TABLE orders (region TEXT, order_id INTEGER, total TEXT, placed_at TEXT, "
    "PRIMARY KEY (region, order_id))",
    "shop.accounts": "CREATE TABLE accounts (id TEXT PRIMARY KEY, email_address TEXT, plan TEXT)",
}
#: share of each extra table's rows per outcome
MIX = {"MATCH": 0.8, "MISMATCH": 0.1, "MISSING_CLOUD": 0.1}
#: the demo's Debezium connector: its ``topic.prefix``, so a table's changes are on ``demo-cdc.<schema>.<table>``
CONNECTOR = "demo-cdc"
#: each extra table's row schema as Debezium's PostgreSQL connector declares it (Connect types, semantic names)
CONNECT_FIELDS = {
    "shop.orders": [
        {"field": "region", "type": "string"},
        {"field": "order_id", "type": "int64"},
        {
            "field": "total",
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "2"},
        },
        {"field": "placed_at", "type": "int64", "name": "io.debezium.time.MicroTimestamp"},
    ],
    "shop.accounts": [
        {"field": "id", "type": "string"},
        {"field": "email", "type": "string"},
        {"field": "plan", "type": "string"},
    ],
}


@dataclass
class TableWork:
    spec: TableSpec
    onprem: list[tuple[bytes, bytes]] = field(default_factory=list)  # (pair key, Topic-1 record)
    changes: list[tuple[bytes, bytes]] = field(default_factory=list)  # (Debezium key, change event)
    cloud_rows: list[dict[str, Any]] = field(default_factory=list)  # under the cloud's column names
    expected: Counter = field(default_factory=Counter)  # status → verdicts


def change_topic(table: str, connector: str = CONNECTOR) -> str:
    """The table's change topic, as the connector names it: ``<topic.prefix>.<schema>.<table>``."""
    return f"{connector}.{table}"


def debezium_change(spec: TableSpec, row: dict[str, Any], source_ts: int, lsn: int) -> tuple[bytes, bytes]:
    """An update of ``row`` as Debezium's PostgreSQL connector writes it, JSON with schemas: (key, value)."""
    fields = CONNECT_FIELDS[spec.name]
    image = {f["field"]: _connect_value(f, row[f["field"]]) for f in fields}
    key_fields = [f for f in fields if f["field"] in spec.key]
    key = {"schema": {"type": "struct", "fields": key_fields}, "payload": {c: image[c] for c in spec.key}}
    schema, _, table = spec.name.rpartition(".")
    source = {"connector": "postgresql", "name": CONNECTOR, "db": "demo", "schema": schema, "table": table,
              "lsn": lsn, "ts_ms": source_ts}  # fmt: skip
    struct = {"type": "struct", "fields": fields, "optional": True}
    envelope = {
        "type": "struct",
        "fields": [{**struct, "field": "before"}, {**struct, "field": "after"},
                   {"field": "source", "type": "struct", "fields": []}, {"field": "op", "type": "string"},
                   {"field": "ts_ms", "type": "int64", "optional": True}],
    }  # fmt: skip
    payload = {"before": None, "after": image, "source": source, "op": "u", "ts_ms": source_ts + 5}
    return dumps_kept(key), dumps_kept({"schema": envelope, "payload": payload})


def _connect_value(connect_field: dict[str, Any], value: Any) -> Any:
    """A row value as Debezium encodes it for its field: a Decimal's unscaled two's complement in base64, a
    timestamp's microseconds since the epoch."""
    name = connect_field.get("name")
    if name == "org.apache.kafka.connect.data.Decimal":
        units, fraction = str(value).split(".")
        unscaled = int(units + fraction.ljust(int(connect_field["parameters"]["scale"]), "0"))
        size = max(1, (unscaled.bit_length() + 8) // 8)
        return base64.b64encode(unscaled.to_bytes(size, "big", signed=True)).decode()
    if name == "io.debezium.time.MicroTimestamp":
        from datetime import datetime

        return int(datetime.fromisoformat(value).timestamp() * 1_000_000)
    return value


def catalog_specs() -> dict[str, TableSpec]:
    return dict(parse_catalog(CATALOG).tables)


def build(pks: Sequence[str], now_ms: int, seed: int = 11) -> list[TableWork]:
    """The extra tables' work over the PK values ``pks`` (the first table's, so they overlap)."""
    specs = catalog_specs()
    rng = random.Random(seed)
    return [
        _table(specs["shop.orders"], pks, now_ms, rng, _order_row),
        _table(specs["shop.accounts"], pks, now_ms, rng, _account_row),
    ]


Rows = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def _order_row(pk: str, i: int) -> Rows:
    """(on-prem row, cloud row, a cloud row that differs) of an order: on-prem renders 25.50 and +00:00, the cloud
    25.5 and Z; the differing one has another total."""
    onprem = {"region": ("eu", "us", "ap")[i % 3], "order_id": i, "total": f"{i % 90 + 10}.50",
              "placed_at": "2024-05-01T12:00:00.000+00:00"}  # fmt: skip
    cloud = {**onprem, "total": f"{i % 90 + 10}.5", "placed_at": "2024-05-01T12:00:00Z"}
    return onprem, cloud, {**cloud, "total": f"{i % 90 + 11}.5"}


def _account_row(pk: str, i: int) -> Rows:
    """An account: the cloud names on-prem's ``email`` ``email_address``; the differing one has another plan."""
    onprem = {"id": pk, "email": f"user{i}@example.com", "plan": ("free", "pro")[i % 2]}
    cloud = {"id": pk, "email_address": onprem["email"], "plan": onprem["plan"]}
    return onprem, cloud, {**cloud, "plan": "enterprise"}


def _table(spec: TableSpec, pks: Sequence[str], now_ms: int, rng: random.Random, rows: Any) -> TableWork:
    hasher = RowHasher(spec.hash_strategy, spec.columns, spec.types)
    work = TableWork(spec)
    outcomes = [s for s, share in MIX.items() for _ in range(int(len(pks) * share))]
    outcomes += ["MATCH"] * (len(pks) - len(outcomes))
    rng.shuffle(outcomes)
    for i, (pk_value, outcome) in enumerate(zip(pks, outcomes)):
        onprem, cloud, differing = rows(pk_value, i)
        if outcome == "MISMATCH":  # the cloud holds another value of a non-key column
            cloud = differing
        if outcome != "MISSING_CLOUD":
            work.cloud_rows.append(cloud)
        work.expected[outcome] += 1
        key_values = [onprem[c] for c in spec.key]
        digest, digests = hasher.hash_and_digests(onprem)
        event = {
            "event_id": f"{spec.name}:{canonical_pk(key_values)}",
            "table": spec.name,
            "hash_onprem": digest.digest,
            "column_digests": digests,
            "partitionColumns": [{"type": "PK", "value": v} for v in key_values],
            "event_ts": now_ms,
            "action": "UPDATE",
        }
        key = pair_key(spec.name, canonical_pk(key_values), DEFAULT_TABLE)
        work.onprem.append((key.encode(), dumps_kept(event)))
        work.changes.append(debezium_change(spec, onprem, now_ms, lsn=now_ms * 1000 + i))
    return work
