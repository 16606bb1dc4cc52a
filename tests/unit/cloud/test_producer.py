"""The cloud hash producer: reads, hashes, coalesces, reports drift, dead-letters failures."""

import asyncio
import sqlite3

import orjson
import pytest

from dqhash.cloud.cassandra import CassandraStore
from dqhash.cloud.hash_reader import CloudConfigError, CloudHashReader
from dqhash.cloud.sqlite import SQLiteStore
from dqhash.cloud.tables import CloudTables
from dqhash.core.hashing import RowHasher
from dqhash.core.lookups import LookupRequest, encode_request
from dqhash.ops.dogstatsd import Metrics
from tests.cassandra_double import FakeSession, timeout

NOW = 1_714_564_800_000


class RecordingMetrics(Metrics):
    def __init__(self):
        super().__init__("127.0.0.1", 9, [], enabled=False)
        self.counted = []

    def _count(self, name, tags=None, n=1):
        self.counted.append((name, tuple(tags or ())))


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "cloud.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE rows (id TEXT PRIMARY KEY, name TEXT, amount TEXT, notes TEXT)")
    connection.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", [("a", "Ada", "1.50", "x"), ("b", "Bob", None, "y")])
    connection.commit()
    yield path, connection
    connection.close()


def producer(store, metrics, fields=("id", "name", "amount"), digests=False):
    hasher = RowHasher("v2", list(fields) if fields else None, {"amount": "decimal"})
    return CloudHashReader(
        CloudTables.single(store, hasher),
        "topic2",
        "dlq",
        "metrics",
        "lookups",
        metrics,
        column_digests=digests,
        clock=lambda: NOW,
    )


def request(pk, offset=0, attempt=0):
    return LookupRequest(pk, 0, attempt, encode_request(pk, 0, attempt), 1, offset)


def cloud_docs(outs):
    return [orjson.loads(o.value) for o in outs if o.topic == "topic2"]


def test_found_row_is_hashed_with_the_shared_hasher(db):
    path, _ = db
    metrics = RecordingMetrics()
    p = producer(SQLiteStore(path, "rows", ["id"]), metrics, digests=True)
    outs = asyncio.run(p.handle([request("a")]))
    [doc] = cloud_docs(outs)
    expected = RowHasher("v2", ["id", "name", "amount"], {"amount": "decimal"}).hash(
        {"id": "a", "name": "Ada", "amount": "1.5"}
    )
    assert doc["hash_cloud"] == expected.digest and doc["hash_version"] == "v2" and doc["cloud_ts"] == NOW
    assert set(doc["column_digests"]) == {"id", "name", "amount"}
    assert outs[-1].key == b"a"


def test_missing_row_is_a_null_hash(db):
    path, _ = db
    [doc] = cloud_docs(
        asyncio.run(producer(SQLiteStore(path, "rows", ["id"]), RecordingMetrics()).handle([request("zz")]))
    )
    assert doc["hash_cloud"] is None and doc["pk"] == "zz"


def test_duplicate_requests_in_flight_are_coalesced_into_one_read(db):
    path, _ = db
    store = SQLiteStore(path, "rows", ["id"])
    reads = []
    original = store.fetch

    async def counting(key):
        reads.append(key)
        await asyncio.sleep(0.01)
        return await original(key)

    store.fetch = counting
    metrics = RecordingMetrics()
    outs = asyncio.run(producer(store, metrics).handle([request("a", 1), request("a", 2), request("b", 3)]))
    assert len(reads) == 2 and len(cloud_docs(outs)) == 2
    assert ("dq_lookups_coalesced", ()) in metrics.counted


def test_partial_row_counted(db):
    path, _ = db
    metrics = RecordingMetrics()
    asyncio.run(producer(SQLiteStore(path, "rows", ["id"]), metrics).handle([request("b")]))
    assert ("dq_partial_row", ()) in metrics.counted


def test_schema_drift_reported_once_per_column_not_per_row(db):
    path, _ = db
    metrics = RecordingMetrics()
    p = producer(SQLiteStore(path, "rows", ["id"]), metrics)
    outs = asyncio.run(p.handle([request("a")])) + asyncio.run(p.handle([request("b")]))
    events = [orjson.loads(o.value) for o in outs if o.topic == "metrics"]
    assert events == [
        {
            "type": "schema_drift_detected",
            "table": "default",
            "column": "notes",
            "detected_at": "2024-05-01T12:00:00.000Z",
        }
    ]
    assert metrics.counted.count(("dq_schema_drift_detected", ("column:notes", "table:default"))) == 1


def test_hashed_column_removed_at_runtime_is_flagged(db):
    path, connection = db
    metrics = RecordingMetrics()
    p = producer(SQLiteStore(path, "rows", ["id"]), metrics)
    connection.execute("ALTER TABLE rows DROP COLUMN amount")
    connection.commit()
    outs = asyncio.run(p.handle([request("a")]))
    [doc] = cloud_docs(outs)
    assert doc["columns_removed"] == ["amount"]
    assert ("dq_column_removed", ("column:amount", "table:default")) in metrics.counted
    assert any(orjson.loads(o.value)["type"] == "column_removed" for o in outs if o.topic == "metrics")


def test_unknown_column_in_the_hash_list_refuses_to_start(db):
    path, _ = db
    with pytest.raises(CloudConfigError, match="unknown column"):
        producer(SQLiteStore(path, "rows", ["id"]), RecordingMetrics(), fields=("id", "nope"))


def test_exhausted_cassandra_retries_go_to_the_dlq_with_the_reason():
    session = FakeSession("ks", "t", {"id": "text", "v": "int"}, ["id"], failures={("k",): [timeout()] * 4})
    store = CassandraStore(session, "ks", "t", retries=3, backoff_s=0.001)
    metrics = RecordingMetrics()
    outs = asyncio.run(producer(store, metrics, fields=("id", "v")).handle([request("k", offset=9)]))
    [out] = outs
    headers = dict(out.headers)
    assert out.topic == "dlq" and out.key == b"k" and out.value == encode_request("k", 0, 0)
    assert headers["dq.error.reason"] == b"CASSANDRA_TIMEOUT" and headers["dq.source.topic"] == b"lookups"
    assert headers["dq.source.offset"] == b"9"
    assert ("dq_cassandra_timeout", ()) in metrics.counted


def test_requests_wait_for_their_not_before_time(db, monkeypatch):
    path, _ = db
    clock = {"now": NOW}
    p = CloudHashReader(
        CloudTables.single(SQLiteStore(path, "rows", ["id"]), RowHasher("v2")),
        "topic2",
        "dlq",
        "metrics",
        "lookups",
        RecordingMetrics(),
        clock=lambda: clock["now"],
    )
    slept = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds):
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    asyncio.run(p.handle([LookupRequest("a", NOW + 1_500, 0, b"", 0, 0)]))
    assert slept == [1.5]


def test_the_producer_sends_column_digests_by_default_so_a_recheck_can_name_columns(db):
    from dqhash.cloud.factory import build_reader
    from dqhash.settings import load

    path, _ = db
    settings = load({"DQHASH_CLOUD_STORE": "sqlite", "DQHASH_SQLITE_PATH": str(path), "DQHASH_SQLITE_TABLE": "rows"})
    assert settings.column_digests
    reader = build_reader(settings, RecordingMetrics(), SQLiteStore(path, "rows", ["id"]))
    [doc] = cloud_docs(asyncio.run(reader.handle([request("a")])))
    assert set(doc["column_digests"]) == {"id", "name", "amount", "notes"}
    off = load({"DQHASH_COLUMN_DIGESTS": "false", "DQHASH_CLOUD_STORE": "sqlite", "DQHASH_SQLITE_PATH": str(path)})
    [bare] = cloud_docs(
        asyncio.run(build_reader(off, RecordingMetrics(), SQLiteStore(path, "rows", ["id"])).handle([request("a")]))
    )
    assert "column_digests" not in bare
