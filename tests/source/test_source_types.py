"""Source column types as the cloud sees them: SQLAlchemy's reflected types → CQL types and value readings."""

import ipaddress
from datetime import datetime, time, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import ARRAY, BigInteger, DateTime, Integer, Numeric, String, Text, Time

from dqhash.source.types import (
    UnmappedType,
    inet_address,
    interval_micros,
    source_type,
    utc_naive,
    utc_time,
)

#: PostgreSQL's types as SQLAlchemy reflects them → the CQL type each is hashed as (docs/source.md)
MAPPING = [
    (postgresql.BOOLEAN(), "boolean"),
    (postgresql.SMALLINT(), "smallint"),
    (postgresql.INTEGER(), "int"),
    (postgresql.BIGINT(), "bigint"),
    (postgresql.REAL(), "float"),
    (postgresql.DOUBLE_PRECISION(), "double"),
    (postgresql.NUMERIC(12, 2), "decimal"),
    (postgresql.MONEY(), "decimal"),
    (postgresql.TEXT(), "text"),
    (postgresql.VARCHAR(20), "text"),
    (postgresql.CHAR(3), "text"),
    (postgresql.ENUM("a", "b", name="e"), "text"),
    (postgresql.JSON(), "text"),
    (postgresql.JSONB(), "text"),
    (postgresql.CIDR(), "text"),
    (postgresql.INET(), "inet"),
    (postgresql.BYTEA(), "blob"),
    (postgresql.UUID(), "uuid"),
    (postgresql.DATE(), "date"),
    (postgresql.TIME(), "time"),
    (postgresql.TIME(timezone=True), "time"),
    (postgresql.TIMESTAMP(), "timestamp"),
    (postgresql.TIMESTAMP(timezone=True), "timestamp"),
    (postgresql.INTERVAL(), "bigint"),
    (postgresql.ARRAY(Integer()), "list<int>"),
    (postgresql.ARRAY(Text()), "list<text>"),
]


@pytest.mark.parametrize(("sql_type", "cql"), MAPPING, ids=[str(t) for t, _ in MAPPING])
def test_each_reflected_type_is_hashed_as_its_cql_counterpart(sql_type, cql):
    assert source_type("c", sql_type).cql == cql


def test_json_and_cidr_are_read_as_the_text_the_database_writes():
    assert source_type("doc", postgresql.JSONB()).as_text and source_type("net", postgresql.CIDR()).as_text
    assert not source_type("n", Numeric()).as_text and not source_type("s", String()).as_text


def test_a_type_without_a_cql_counterpart_is_refused_naming_the_column_and_what_to_do():
    with pytest.raises(UnmappedType, match=r"column 'words' has type TSVECTOR.*declare its cloud type.*or exclude"):
        source_type("words", postgresql.TSVECTOR())
    with pytest.raises(UnmappedType, match="column 'docs'"):
        source_type("docs", ARRAY(postgresql.JSONB()))


def test_timestamps_with_a_zone_become_the_naive_utc_cassandras_driver_returns():
    aware = datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    assert source_type("t", DateTime(timezone=True)).convert(aware) == datetime(2024, 5, 1, 12, 30)
    assert utc_naive(datetime(2024, 5, 1, 12, 30)) == datetime(2024, 5, 1, 12, 30)


def test_a_time_with_a_zone_is_its_utc_time_across_midnight():
    assert source_type("t", Time(timezone=True)).convert is utc_time
    assert utc_time(time(1, 15, tzinfo=timezone(timedelta(hours=3)))) == time(22, 15)
    assert utc_time(time(23, 0, 0, 5, tzinfo=timezone(timedelta(hours=-2)))) == time(1, 0, 0, 5)
    assert source_type("t", Time()).convert is None


def test_an_interval_is_debeziums_microseconds_and_arrays_convert_each_element():
    assert interval_micros(timedelta(days=1, seconds=2, microseconds=3)) == 86_402_000_003
    assert interval_micros(timedelta(microseconds=-1)) == -1
    each = source_type("gaps", ARRAY(postgresql.INTERVAL())).convert
    assert each([timedelta(seconds=1), None]) == [1_000_000, None]
    assert source_type("n", ARRAY(BigInteger())).convert is None


def test_an_inet_host_is_its_address_and_a_network_stays_to_be_refused_when_hashed():
    assert inet_address(ipaddress.ip_interface("10.0.0.7/32")) == ipaddress.ip_address("10.0.0.7")
    assert inet_address(ipaddress.ip_address("::1")) == ipaddress.ip_address("::1")
    assert inet_address(ipaddress.ip_interface("10.0.0.0/24")) == "10.0.0.0/24"
