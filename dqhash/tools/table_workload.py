"""More tables for the demo, with known answers: a composite key, a renamed column, PK values shared with others.

Pure: it builds the catalog the demo's worker reads (``CATALOG``), each extra table's cloud rows and on-prem
change events (each naming its table, keyed by its pair key), and the verdicts a correct pipeline gives each
table. The demo's first table is the mixed workload of ``tools.workload`` (``shop.customers``, the catalog's
default table, whose records name no table); the extra tables reuse its PK values, so the same PK value is a row
of several tables and must never be paired across them.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dqhash.core.catalog import TableSpec, parse_catalog
from dqhash.core.contracts import canonical_pk
from dqhash.core.hashing import RowHasher
from dqhash.core.jsontext import dumps_kept
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


@dataclass
class TableWork:
    spec: TableSpec
    onprem: list[tuple[bytes, bytes]] = field(default_factory=list)  # (pair key, Topic-1 record)
    cloud_rows: list[dict[str, Any]] = field(default_factory=list)  # under the cloud's column names
    expected: Counter = field(default_factory=Counter)  # status → verdicts


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
    return work
