"""A quiet table's time from the connector's replication slot, against a real PostgreSQL server with a logical slot:
the slot confirms a probe only once it has passed the probe's WAL position (``core.idle_time``)."""

import pytest
from sqlalchemy import create_engine, text

from dqhash.core.idle_time import KafkaThrough
from dqhash.source.database import SourceError, source_url
from dqhash.source.slot import ReplicationSlot
from tests.postgres_server import running_postgres


@pytest.fixture(scope="module")
def server():
    with running_postgres() as url:
        engine = create_engine(source_url(url))
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_create_logical_replication_slot('dbz', 'pgoutput')"))
            connection.execute(text("CREATE TABLE quiet (id integer PRIMARY KEY)"))
        engine.dispose()
        yield url


def write_and_confirm(url, confirm):
    engine = create_engine(source_url(url))
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO quiet SELECT coalesce(max(id), 0) + 1 FROM quiet"))
        if confirm:  # what Debezium does once Kafka Connect has committed the offsets of what it sent
            connection.execute(text("SELECT pg_replication_slot_advance('dbz', pg_current_wal_lsn())"))
    engine.dispose()


def test_the_slot_confirms_a_probe_once_it_has_passed_its_position(server):
    slot, kafka = ReplicationSlot(source_url(server), "dbz"), KafkaThrough()
    try:
        lsn, at_ms, flushed = slot.read()
        kafka.probe(lsn, at_ms)
        write_and_confirm(server, confirm=False)  # a change committed after the probe: the slot has not moved
        later_lsn, later_ms, still = slot.read()
        assert later_lsn > lsn and later_ms >= at_ms and still == flushed
        assert kafka.confirmed(still) is None  # not yet: a change committed before at_ms may not be in Kafka
        write_and_confirm(server, confirm=True)
        _, _, confirmed = slot.read()
        assert confirmed >= lsn and kafka.confirmed(confirmed) == at_ms
    finally:
        slot.close()


def test_a_missing_slot_or_an_unreachable_source_says_what_to_set(server):
    missing = ReplicationSlot(source_url(server), "nope")
    with pytest.raises(SourceError, match="no replication slot 'nope': set DQHASH_DEBEZIUM_SLOT"):
        missing.read()
    missing.close()
    down = ReplicationSlot(source_url("postgresql://dq@127.0.0.1:9/none"), "dbz")
    with pytest.raises(SourceError, match="cannot read the replication slot's position .* DQHASH_SOURCE_URL"):
        down.read()
