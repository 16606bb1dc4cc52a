"""The source database read directly, against a real PostgreSQL server (tests/postgres_server.py): types mapped
as Debezium maps them, rows hashed exactly as the cloud reader hashes the same row, streamed in bounded memory,
and every problem said in one line."""

import ipaddress
import uuid
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from dqhash.core.catalog import parse_catalog
from dqhash.core.hashing import RowHasher
from dqhash.source.database import SourceError, SourceTable, source_url
from tests.postgres_server import running_postgres

#: one row of every mapped type, as PostgreSQL stores it, and as Cassandra's driver returns the migrated row
DDL = """
CREATE SCHEMA shop;
CREATE TYPE shop.mood AS ENUM ('calm', 'busy');
CREATE TABLE shop.everything (
    id uuid, region text, small smallint, number integer, big bigint, ratio real, precise double precision,
    amount numeric(12, 2), price money, flag boolean, label varchar(20), code char(3), mood shop.mood,
    doc jsonb, raw bytea, day date, at_time time, at_zoned_time timetz, created timestamp, updated timestamptz,
    gap interval, host inet, tags text[], scores integer[], PRIMARY KEY (region, id)
);
"""
ROW_ID = uuid.UUID("6f1c2d1e-8a4b-4c3d-9e2f-0a1b2c3d4e5f")
INSERT = """
INSERT INTO shop.everything VALUES (
    '6f1c2d1e-8a4b-4c3d-9e2f-0a1b2c3d4e5f', 'eu', -7, 42, 9007199254740993, 0.1, 0.1, 1234.50, 19.99, true,
    'hello', 'ab', 'busy', '{"b": [1, 2], "a": "x"}', '\\x00ff10', '2024-02-29', '13:45:01.123456',
    '01:15:00+03', '2024-05-01 12:30:00.123456', '2024-05-01 14:30:00.5+02', '1 day 2 hours 3.000004 seconds',
    '10.1.2.3', '{"a","b"}', '{3,1,2}'
), (
    '00000000-0000-0000-0000-000000000001', 'us', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
);
"""
CLOUD_ROW = {
    "id": ROW_ID,
    "region": "eu",
    "small": -7,
    "number": 42,
    "big": 9007199254740993,
    "ratio": 0.1,  # a CQL float: the spec rounds to binary32, as PostgreSQL's real stores it
    "precise": 0.1,
    "amount": Decimal("1234.50"),
    "price": Decimal("19.99"),
    "flag": True,
    "label": "hello",
    "code": "ab ",  # char(3) keeps its padding, as Debezium sends it
    "mood": "busy",
    "doc": '{"a": "x", "b": [1, 2]}',  # jsonb's own text
    "raw": b"\x00\xff\x10",
    "day": date(2024, 2, 29),
    "at_time": time(13, 45, 1, 123456),
    "at_zoned_time": time(22, 15),
    "created": datetime(2024, 5, 1, 12, 30, 0, 123456),
    "updated": datetime(2024, 5, 1, 12, 30, 0, 500000),
    "gap": (26 * 3600 + 3) * 1_000_000 + 4,
    "host": ipaddress.ip_address("10.1.2.3"),
    "tags": ["a", "b"],
    "scores": [3, 1, 2],
}
CLOUD_TYPES = {
    "id": "uuid", "region": "text", "small": "smallint", "number": "int", "big": "bigint", "ratio": "float",
    "precise": "double", "amount": "decimal", "price": "decimal", "flag": "boolean", "label": "text",
    "code": "text", "mood": "text", "doc": "text", "raw": "blob", "day": "date", "at_time": "time",
    "at_zoned_time": "time", "created": "timestamp", "updated": "timestamp", "gap": "bigint", "host": "inet",
    "tags": "list<text>", "scores": "list<int>",
}  # fmt: skip


@pytest.fixture(scope="module")
def server():
    with running_postgres() as url:
        engine = create_engine(source_url(url))
        with engine.begin() as connection:
            connection.execute(text(DDL))
            connection.execute(text(INSERT))
            connection.execute(text("CREATE TABLE shop.many (id integer PRIMARY KEY, name text)"))
            connection.execute(text("INSERT INTO shop.many SELECT n, 'name ' || n FROM generate_series(1, 500) n"))
            connection.execute(text("CREATE TABLE shop.keyless (a integer, b text)"))
            connection.execute(text("CREATE TABLE shop.odd (id integer PRIMARY KEY, words tsvector)"))
            connection.execute(text("INSERT INTO shop.odd VALUES (1, 'a fat cat')"))
        engine.dispose()
        yield url


def table(url, name, catalog=None, fetch_rows=2000):
    spec = parse_catalog(catalog).get(name) if catalog else None
    return SourceTable(source_url(url), name, spec, fetch_rows).open()


def test_the_tables_key_and_types_come_from_the_databases_catalog(server):
    source = table(server, "shop.everything")
    try:
        assert source.key == ("region", "id")  # the primary key, in its order
        assert source.types() == CLOUD_TYPES
    finally:
        source.close()


def test_a_row_hashes_exactly_as_the_cloud_reader_hashes_the_migrated_row(server):
    source = table(server, "shop.everything")
    try:
        rows = {row["region"]: row for row in source.rows()}
        hasher = RowHasher("v2", None, source.types())
    finally:
        source.close()
    assert hasher.preimage(rows["eu"]) == hasher.preimage(CLOUD_ROW)
    assert hasher.column_digests(rows["eu"]) == hasher.column_digests(CLOUD_ROW)
    nulls = {**{column: None for column in CLOUD_TYPES}, "id": uuid.UUID(int=1), "region": "us"}
    assert hasher.hash(rows["us"]) == hasher.hash(nulls)
    drifted = {**CLOUD_ROW, "updated": datetime(2024, 5, 1, 14, 30, 0, 500000)}  # the zone ignored: caught
    assert hasher.hash(rows["eu"]) != hasher.hash(drifted)


def test_the_catalog_chooses_the_columns_and_its_declared_types_win(server):
    catalog = (
        '[[table]]\nname = "shop.everything"\ncloud = "ks.everything"\nkey = ["region", "id"]\n'
        'columns = ["amount", "gap", "label"]\ntypes = { gap = "varint" }\n'
    )
    source = table(server, "shop.everything", catalog)
    try:
        assert source.columns == ["amount", "gap", "label", "region", "id"]  # hashed, then the key
        assert source.types()["gap"] == "varint"
        assert {row["region"]: row["gap"] for row in source.rows()}["eu"] == (26 * 3600 + 3) * 1_000_000 + 4
    finally:
        source.close()


def test_rows_stream_through_a_server_side_cursor_a_fetch_at_a_time(server):
    source = table(server, "shop.many", fetch_rows=50)
    watcher = create_engine(source_url(server))
    try:
        rows = source.rows()
        first = [next(rows) for _ in range(60)]  # past SQLAlchemy's first fetch, of one row
        with watcher.connect() as connection:
            reading = (
                connection.execute(
                    text("SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE 'FETCH%'")
                )
                .scalars()
                .all()
            )
        assert reading and "FETCH FORWARD 50" in reading[0], reading  # a named cursor, 50 rows a fetch
        names = [row["name"] for row in first] + [row["name"] for row in rows]
        assert len(names) == 500 and set(names) == {f"name {n}" for n in range(1, 501)}
    finally:
        watcher.dispose()
        source.close()


def test_a_column_whose_type_has_no_cql_counterpart_is_named_unless_the_catalog_declares_it(server):
    with pytest.raises(SourceError, match=r"table shop.odd: column 'words' has type TSVECTOR.*declare"):
        table(server, "shop.odd")
    catalog = '[[table]]\nname = "shop.odd"\ncloud = "ks.odd"\nkey = ["id"]\ntypes = { words = "text" }\n'
    source = table(server, "shop.odd", catalog)
    try:
        assert [row["words"] for row in source.rows()] == ["'a' 'cat' 'fat'"]  # its text, as the database writes
    finally:
        source.close()


@pytest.mark.parametrize(
    ("url", "name", "expected"),
    [
        ("postgresql://postgres:hunter2@127.0.0.1:1/postgres", "shop.many", "DQHASH_SOURCE_PASSWORD"),
        (None, "shop.nothing", "no table shop.nothing in the source database"),
        (None, "shop.keyless", "has no primary key: declare its key in the catalog"),
        ("postgresql://postgres@127.0.0.1:{closed}/postgres", "shop.many", "cannot read shop.many at postgresql"),
        ("not a url", "shop.many", "is not a database URL"),
    ],
    ids=["password-in-url", "no-table", "no-key", "unreachable", "not-a-url"],
)
def test_every_problem_is_one_line_that_says_what_to_check_and_never_the_password(server, url, name, expected):
    from dqhash.kafka.embedded_broker import free_port

    given = server if url is None else url.format(closed=free_port())
    with pytest.raises(SourceError) as raised:
        SourceTable(source_url(given), name).open()
    message = str(raised.value)
    assert expected in message and "\n" not in message and "hunter2" not in message


def test_the_password_comes_from_the_environment_and_is_never_shown():
    url = source_url("postgres://reader@db.example:5432/shop", "s3cret")
    assert url.drivername == "postgresql+psycopg" and url.password == "s3cret"
    assert "s3cret" not in url.render_as_string(hide_password=True)


def test_rows_are_plain_json_ready_dicts_and_an_unfinished_reading_ends_at_close(server):
    import orjson

    source = table(server, "shop.many", fetch_rows=10)
    rows = source.rows()
    row = next(rows)
    assert all(type(name) is str for name in row) and orjson.dumps(row)  # orjson refuses str subclasses as keys
    source.close()  # a publish that failed half-way: its transaction must not stay open
    engine = create_engine(source_url(server))
    try:
        with engine.connect() as connection:
            open_transactions = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'")
            ).scalar()
        assert open_transactions == 0
    finally:
        engine.dispose()
