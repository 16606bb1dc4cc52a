"""The cloud hash producer over a catalog: each table read by its own store, hashed by its own rules."""

import asyncio
import sqlite3

import orjson

from dqhash.cloud.factory import build_reader
from dqhash.cloud.hash_reader import CloudHashReader
from dqhash.cloud.sqlite import SQLiteStore
from dqhash.cloud.tables import CloudTables
from dqhash.core.catalog import parse_catalog
from dqhash.core.hashing import RowHasher
from dqhash.core.lookups import LookupRequest, encode_request
from dqhash.core.table_keys import SEPARATOR
from dqhash.ops.dogstatsd import Metrics
from dqhash.settings import load

NOW = 1_714_564_800_000
CATALOG = """
default = "shop.orders"
[[table]]
name = "shop.orders"
cloud = "ks.orders"
key = ["id"]
columns = ["id", "amount", "placed"]
types = { amount = "decimal" }
rename = { placed = "placed_at" }
[[table]]
name = "shop.customers"
cloud = "ks.customers"
key = ["id"]
exclude = ["etl_loaded_at"]
hash_strategy = "v1"
"""


def cloud_db(tmp_path):
    path = tmp_path / "cloud.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, amount TEXT, placed_at TEXT)")
    connection.execute("CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT, etl_loaded_at TEXT)")
    connection.execute("INSERT INTO orders VALUES ('42', '1.50', '2024-05-01')")
    connection.execute("INSERT INTO customers VALUES ('42', 'Ada', 'yesterday')")
    connection.commit()
    connection.close()
    return path


def request(key, offset=0):
    return LookupRequest(key, 0, 0, encode_request(key, 0, 0), 1, offset)


def reader(tmp_path, opened):
    path = cloud_db(tmp_path)

    def open_store(spec):
        opened.append(spec.name)
        return SQLiteStore(path, spec.cloud_table, spec.key)

    tables = CloudTables(parse_catalog(CATALOG), open_store)
    metrics = Metrics("127.0.0.1", 9, [], enabled=False)
    return CloudHashReader(
        tables, "topic2", "dlq", "metrics", "lookups", metrics, column_digests=False, clock=lambda: NOW
    )


def test_each_table_is_read_and_hashed_by_its_own_rules_and_opened_once(tmp_path):
    opened: list = []
    producer = reader(tmp_path, opened)
    customers = f"shop.customers{SEPARATOR}42"
    outs = asyncio.run(producer.handle([request("42"), request(customers, 1)]))
    outs += asyncio.run(producer.handle([request(customers, 2)]))
    docs = [(o.key, orjson.loads(o.value)) for o in outs if o.topic == "topic2"]
    orders_hash = RowHasher("v2", ["id", "amount", "placed"], {"amount": "decimal"}).hash(
        {"id": "42", "amount": "1.5", "placed": "2024-05-01"}  # the cloud's placed_at, hashed as on-prem's placed
    )
    customers_hash = RowHasher("v1").hash({"id": "42", "name": "Ada"})  # etl_loaded_at excluded
    assert docs[0] == (
        b"42",
        {
            "pk": "42",
            "hash_cloud": orders_hash.digest,
            "cloud_ts": NOW,
            "hash_version": "v2",
            "attempt": 0,
            "table": "shop.orders",
        },
    )
    assert docs[1][0] == customers.encode() and docs[1][1]["table"] == "shop.customers" and docs[1][1]["pk"] == "42"
    assert docs[1][1]["hash_cloud"] == customers_hash.digest and docs[1][1]["hash_version"] == "v1"
    assert docs[2] == docs[1] and opened == ["shop.orders", "shop.customers"]


def test_a_lookup_of_a_table_it_cannot_read_is_dead_lettered_and_the_others_go_on(tmp_path):
    producer = reader(tmp_path, [])
    unknown = f"billing.invoices{SEPARATOR}1"
    outs = asyncio.run(producer.handle([request(unknown), request("42", 1)]))
    [dead] = [o for o in outs if o.topic == "dlq"]
    assert dict(dead.headers)["dq.error.reason"] == b"UNKNOWN_TABLE" and dead.key == unknown.encode()
    assert dict(dead.headers)["dq.table"] == b"billing.invoices"
    assert [orjson.loads(o.value)["pk"] for o in outs if o.topic == "topic2"] == ["42"]


def test_a_table_whose_hash_list_the_cloud_table_lacks_is_refused_with_the_columns(tmp_path):
    path = cloud_db(tmp_path)
    catalog = parse_catalog("[[table]]\nname='a.b'\ncloud='ks.orders'\nkey=['id']\ncolumns=['id','nope']\n")
    tables = CloudTables(catalog, lambda spec: SQLiteStore(path, spec.cloud_table, spec.key))
    metrics = Metrics("127.0.0.1", 9, [], enabled=False)
    producer = CloudHashReader(tables, "topic2", "dlq", "metrics", "lookups", metrics)
    [dead] = asyncio.run(producer.handle([request(f"a.b{SEPARATOR}1")]))
    headers = dict(dead.headers)
    assert headers["dq.error.reason"] == b"CLOUD_TABLE_UNREADABLE" and b"['nope']" in headers["dq.error.message"]


def test_the_catalog_of_the_settings_builds_a_producer_of_every_table(tmp_path):
    path = cloud_db(tmp_path)
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    settings = load({"DQHASH_CATALOG": str(catalog), "DQHASH_CLOUD_STORE": "sqlite", "DQHASH_SQLITE_PATH": str(path)})
    producer = build_reader(settings, Metrics("127.0.0.1", 9, [], enabled=False))
    outs = asyncio.run(producer.handle([request(f"shop.customers{SEPARATOR}42")]))
    [doc] = [orjson.loads(o.value) for o in outs if o.topic == "topic2"]
    assert doc["table"] == "shop.customers" and doc["hash_cloud"] is not None
