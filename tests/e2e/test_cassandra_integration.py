"""Against a real Cassandra: set DQHASH_TEST_CASSANDRA=host:port (e.g. a local `cassandra` container).

Creates a keyspace and table, writes rows of many types, reads them back through
CassandraStore (real cassandra-driver, token-aware LOCAL_QUORUM profile) and
checks the producer's hashes equal the hashes of the same rows written as
on-prem JSON with declared types.
"""

import asyncio
import os
import uuid
from datetime import datetime
from decimal import Decimal

import orjson
import pytest

from dqhash.cloud.audit_sink import CassandraAuditSink
from dqhash.cloud.cassandra import CassandraStore, connect_cassandra
from dqhash.cloud.hash_reader import CloudHashReader
from dqhash.cloud.tables import CloudTables
from dqhash.core.hashing import RowHasher
from dqhash.core.lookups import LookupRequest, encode_request
from dqhash.ops.dogstatsd import Metrics

TARGET = os.environ.get("DQHASH_TEST_CASSANDRA")
pytestmark = [
    pytest.mark.cassandra,
    pytest.mark.skipif(not TARGET, reason="no real Cassandra: set DQHASH_TEST_CASSANDRA=host:port to run this test"),
]

TYPES = {"amount": "decimal", "updated_at": "timestamp", "tags": "set<text>", "ref": "uuid"}


@pytest.fixture(scope="module")
def cassandra():
    host, _, port = TARGET.partition(":")
    session = connect_cassandra([host], int(port or 9042), None, "LOCAL_ONE", 10.0)
    keyspace = f"dqhash_it_{uuid.uuid4().hex[:8]}"
    session.execute(
        f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )
    session.execute(
        f"CREATE TABLE {keyspace}.customers (region text, id bigint, name text, amount decimal, "
        "updated_at timestamp, tags set<text>, ref uuid, PRIMARY KEY ((region, id)))"
    )
    session.cluster.refresh_schema_metadata()
    yield session, keyspace
    session.execute(f"DROP KEYSPACE {keyspace}")
    session.cluster.shutdown()


def test_producer_hashes_real_cassandra_rows_like_the_on_prem_json(cassandra):
    session, keyspace = cassandra
    ref = uuid.uuid4()
    session.execute(
        f"INSERT INTO {keyspace}.customers (region, id, name, amount, updated_at, tags, ref) VALUES (%s,%s,%s,%s,%s,%s,%s)",
        ("eu", 42, "Ada", Decimal("12.50"), datetime(2024, 5, 1, 12, 0, 0, 123000), {"b", "a"}, ref),
    )
    store = CassandraStore(session, keyspace, "customers", consistency="LOCAL_ONE")
    fields = ["region", "id", "name", "amount", "updated_at", "tags", "ref"]
    producer = CloudHashReader(
        CloudTables.single(store, RowHasher("v2", fields)),
        "topic2",
        "dlq",
        "metrics",
        "lookups",
        Metrics("127.0.0.1", 9, [], enabled=False),
    )
    pk = '["eu","42"]'
    outs = asyncio.run(producer.handle([LookupRequest(pk, 0, 0, encode_request(pk, 0, 0), 0, 0)]))
    [doc] = [orjson.loads(o.value) for o in outs if o.topic == "topic2"]
    onprem_json = {
        "region": "eu",
        "id": 42,
        "name": "Ada",
        "amount": "12.5",
        "updated_at": "2024-05-01T12:00:00.123Z",
        "tags": ["a", "b"],
        "ref": str(ref).upper(),
    }
    assert doc["hash_cloud"] == RowHasher("v2", fields, TYPES).hash(onprem_json).digest
    missing = asyncio.run(producer.handle([LookupRequest('["eu","7"]', 0, 0, b"", 0, 1)]))
    assert orjson.loads(missing[-1].value)["hash_cloud"] is None


def test_audit_rows_are_written_idempotently_and_queryable_by_pk(cassandra):
    session, keyspace = cassandra
    sink = CassandraAuditSink(session, keyspace, ttl_days=1)
    record = {
        "audit_id": "it-1",
        "pk": "42",
        "event_id": "e1",
        "status": "MISMATCH",
        "reason": "hashes differ",
        "late": False,
        "action": "UPDATE",
        "hash_onprem": "v2:aa",
        "hash_cloud": "v2:bb",
        "event_ts": "2024-05-01T12:00:00.000Z",
        "cloud_ts": None,
        "window_start": "2024-05-01T12:00:00.000Z",
        "classified_at": "2024-05-01T12:01:30.000Z",
        "rechecks": 2,
    }
    asyncio.run(sink.write(record))
    asyncio.run(sink.write(record))  # a redelivery: the same row, not a second one
    rows = list(session.execute(f"SELECT audit_id, status, rechecks FROM {keyspace}.audit_by_pk WHERE pk = '42'"))
    assert [(r["audit_id"], r["status"], r["rechecks"]) for r in rows] == [("it-1", "MISMATCH", 2)]


def test_the_range_scan_reads_every_row_once_and_our_token_is_cassandras(cassandra):
    from dqhash.cloud.scanner import CassandraRangeScan
    from dqhash.cloud.tokens import token_of
    from dqhash.core.token_ranges import split

    session, keyspace = cassandra
    for i in range(57):
        session.execute(
            f"INSERT INTO {keyspace}.customers (region, id, name) VALUES (%s, %s, %s)", (f"r{i % 3}", 1000 + i, "n")
        )
    scan = CassandraRangeScan(session, keyspace, "customers", consistency="LOCAL_ONE", fetch_size=10)
    assert scan.partition_key == ("region", "id")
    seen = []
    for start, end in split(6):
        for page in asyncio.run(_pages(scan, start, end)):
            assert len(page) <= 10
            seen += [(row["region"], row["id"]) for row in page]
    assert len(seen) == len(set(seen)) and {k for k in seen if k[1] >= 1000} == {
        (f"r{i % 3}", 1000 + i) for i in range(57)
    }
    for row in session.execute(f"SELECT region, id, token(region, id) AS t FROM {keyspace}.customers"):
        assert token_of(row, ["region", "id"], {"id": "bigint"}) == row["t"]


async def _pages(scan, start, end):
    return [page async for page in scan.pages(start, end)]
