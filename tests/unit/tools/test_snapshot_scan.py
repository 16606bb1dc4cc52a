"""The cloud side of a snapshot: token ranges, the Cassandra range scan through the driver's API (a test
double speaking it), the SQLite scan, the scan checkpoint and the rows/s budget."""

import asyncio

import pytest
from cassandra import ConsistencyLevel

from dqhash.cloud.scanner import CassandraRangeScan, SQLiteRangeScan
from dqhash.cloud.tokens import TokenError, routing_key, token_of
from dqhash.core.token_ranges import MAX_TOKEN, MIN_TOKEN, range_of, split
from dqhash.tools.snapshot import common
from dqhash.tools.snapshot.scan import Checkpoint
from tests.cassandra_double import FakeSession, timeout


def test_the_ring_splits_into_contiguous_ranges_that_cover_it_once():
    ranges = split(7)
    assert ranges[0][0] == MIN_TOKEN and ranges[-1][1] == MAX_TOKEN
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert range_of(MAX_TOKEN, ranges) == 6 and range_of(MIN_TOKEN + 1, ranges) == 0
    assert range_of(ranges[2][1], ranges) == 2 and range_of(ranges[2][1] + 1, ranges) == 3
    with pytest.raises(ValueError):
        range_of(MIN_TOKEN, ranges)  # no key has it: Cassandra's partitioner maps it to MAX_TOKEN
    with pytest.raises(ValueError):
        split(0)


def test_tokens_are_cassandras_murmur3_of_the_serialized_partition_key():
    from cassandra.metadata import Murmur3Token

    assert token_of({"id": "demo-1"}, ["id"], {}) == Murmur3Token.from_key(b"demo-1").value
    assert token_of({"id": 42}, ["id"], {"id": "bigint"}) == token_of({"id": "42"}, ["id"], {"id": "bigint"})
    composite = routing_key(["eu", 7], ["text", "int"])
    assert composite == b"\x00\x02eu\x00" + b"\x00\x04\x00\x00\x00\x07\x00"  # the driver's routing key layout
    with pytest.raises(TokenError):
        token_of({"id": "x"}, ["id"], {"id": "bigint"})


def session_with(rows):
    session = FakeSession("ks", "t", {"id": "text", "name": "text"}, ["id"], delay_s=0.0)
    session.rows = {(r["id"],): r for r in rows}
    return session


async def read_all(scan, start, end):
    return [page async for page in scan.pages(start, end)]


def test_the_cassandra_scan_reads_a_range_by_token_in_bounded_pages_at_local_quorum():
    rows = [{"id": f"k{i}", "name": f"n{i}"} for i in range(23)]
    session = session_with(rows)
    scan = CassandraRangeScan(session, "ks", "t", fetch_size=5)
    [statement] = session.prepared
    assert statement.query_string == 'SELECT * FROM "ks"."t" WHERE token("id") > ? AND token("id") <= ?'
    assert statement.consistency_level == ConsistencyLevel.LOCAL_QUORUM and statement.is_idempotent
    assert statement.fetch_size == 5
    ranges = split(3)
    seen = []
    for start, end in ranges:
        pages = asyncio.run(read_all(scan, start, end))
        assert all(len(page) <= 5 for page in pages)
        seen += [row["id"] for page in pages for row in page]
    assert sorted(seen) == sorted(r["id"] for r in rows)  # every row once, over the ranges
    assert {kwargs["paging_state"] for kwargs in session.execute_kwargs} >= {None, 5, 10}


def test_a_page_that_times_out_is_asked_again_from_the_same_paging_state():
    session = session_with([{"id": f"k{i}", "name": "n"} for i in range(12)])
    scan = CassandraRangeScan(session, "ks", "t", fetch_size=5, backoff_s=0.001)
    pages = iter(())

    async def run():
        nonlocal pages
        out = []
        async for page in scan.pages(MIN_TOKEN, MAX_TOKEN):
            out.append(page)
            if len(out) == 1:
                session.fail_next = [timeout()]
        return out

    out = asyncio.run(run())
    assert sum(len(p) for p in out) == 12
    states = [kwargs["paging_state"] for kwargs in session.execute_kwargs]
    assert states == [None, 5, 5, 10]  # the failed page, then the same page again


def test_the_sqlite_scan_numbers_rows_by_the_same_token(tmp_path):
    import sqlite3

    db = tmp_path / "cloud.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE rows (id TEXT PRIMARY KEY, name TEXT)")
        connection.executemany("INSERT INTO rows VALUES (?, ?)", [(f"k{i}", "n") for i in range(30)])
    scan = SQLiteRangeScan(db, "rows", ["id"], {}, fetch_size=4)
    ranges = split(5)
    for index, (start, end) in enumerate(ranges):
        for page in asyncio.run(read_all(scan, start, end)):
            assert len(page) <= 4
            assert all(range_of(token_of(row, ["id"], {}), ranges) == index for row in page)
    scan.close()


def test_a_checkpoint_keeps_finished_ranges_and_refuses_another_run(tmp_path):
    path = tmp_path / "scan.json"
    first = Checkpoint(path, "s1", 8)
    first.started_ts = 5
    first.finish(2, {0: 3, 1: 1})
    first.finish(5, {1: 2})
    again = Checkpoint(path, "s1", 8)
    assert set(again.done) == {2, 5} and again.rows_per_partition() == {0: 3, 1: 3} and again.started_ts == 5
    with pytest.raises(ValueError, match="belongs to snapshot 's1'"):
        Checkpoint(path, "s2", 8)


def test_one_checkpoint_keeps_each_tables_run_of_a_catalog_scan_and_reads_an_earlier_versions_file(tmp_path):
    path = tmp_path / "scan.json"
    whole = Checkpoint(path, "nightly", 8)
    orders, items = whole.run("nightly:shop.orders"), whole.run("nightly:shop.items")
    orders.started_ts = 7
    orders.finish(1, {0: 2})
    items.finish(3, {2: 5})
    again = Checkpoint(path, "nightly", 8)
    assert set(again.run("nightly:shop.orders").done) == {1} and again.run("nightly:shop.orders").started_ts == 7
    assert again.run("nightly:shop.items").rows_per_partition() == {2: 5} and again.run("nightly:x").done == {}
    old = tmp_path / "old.json"
    old.write_text('{"snapshot_id": "s1", "splits": 8, "started_ts": 3, "done": {"4": {"0": 9}}}')
    earlier = Checkpoint(old, "s1", 8)
    assert earlier.done == {4: {0: 9}} and earlier.started_ts == 3


def test_the_budget_waits_for_the_rows_it_has_not_earned(monkeypatch):
    clock = [100.0]
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(common.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(common.asyncio, "sleep", fake_sleep)
    budget = common.Budget(100)

    async def take_all():
        for _ in range(5):
            await budget.take(50)

    asyncio.run(take_all())
    assert clock[0] - 100.0 == pytest.approx(2.5)  # 250 rows at 100 rows/s
    asyncio.run(common.Budget(0).take(10**6))  # 0: no limit, no wait


@pytest.mark.parametrize("without_rowid", [False, True])
def test_the_sqlite_scan_reads_every_row_once_in_its_own_range(tmp_path, monkeypatch, without_rowid):
    """Each row in exactly one range, in token order; with rowids, each key hashed to its token once in all
    (a temporary index), not once per range."""
    import sqlite3

    from dqhash.cloud import scanner

    path = tmp_path / "cloud.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE rows (id TEXT PRIMARY KEY, name TEXT)" + (" WITHOUT ROWID" if without_rowid else ""))
        db.executemany("INSERT INTO rows VALUES (?, ?)", [(f"k{i}", f"n{i}") for i in range(500)])
    calls = []

    def counting(values, names, types):
        calls.append(1)
        return token_of(values, names, types)

    monkeypatch.setattr(scanner, "token_of", counting)
    scan = SQLiteRangeScan(path, "rows", ["id"], {}, fetch_size=64)

    async def read_all():
        found = {}
        for index, (start, end) in enumerate(split(16)):
            async for rows in scan.pages(start, end):
                for row in rows:
                    found.setdefault(row["id"], []).append(index)
        return found

    try:
        found = asyncio.run(read_all())
    finally:
        scan.close()
    assert sorted(found) == sorted(f"k{i}" for i in range(500)) and all(len(r) == 1 for r in found.values())
    for pk, [index] in found.items():
        assert range_of(token_of({"id": pk}, ("id",), {}), split(16)) == index
    if without_rowid:  # the fallback: every key hashed in every range's query
        assert len(calls) >= 500 * 16
    else:
        assert len(calls) == 500, "with the token index, each key is hashed once in all"
