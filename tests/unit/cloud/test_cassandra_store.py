"""CassandraStore through the driver's API surface (tests/cassandra_double.py)."""

import asyncio
from decimal import Decimal

import pytest
from cassandra import ConsistencyLevel

from dqhash.cloud.cassandra import CassandraStore
from dqhash.cloud.store import LookupFailed, StoreConfigError
from tests.cassandra_double import FakeSession, invalid, read_timeout, timeout, unavailable

COLUMNS = {"region": "text", "id": "bigint", "name": "text", "amount": "decimal"}


def session(**kwargs):
    return FakeSession("shop", "customers", COLUMNS, ["region", "id"], **kwargs)


def store(s, **kwargs):
    return CassandraStore(s, "shop", "customers", backoff_s=0.001, **kwargs)


def run(coro):
    return asyncio.run(coro)


def test_prepares_one_idempotent_local_quorum_statement_for_a_composite_key():
    s = session()
    cs = store(s)
    [prepared] = s.prepared
    assert prepared.query_string == 'SELECT * FROM "shop"."customers" WHERE "region" = ? AND "id" = ?'
    assert prepared.consistency_level == ConsistencyLevel.LOCAL_QUORUM and prepared.is_idempotent
    assert cs.key_columns == ("region", "id")


def test_composite_pk_is_bound_with_the_key_column_types():
    s = session(rows={("eu", 42): {"region": "eu", "id": 42, "name": "Ada", "amount": Decimal("1.50")}})
    cs = store(s)
    key = cs.key_from_pk('["eu","42"]')
    assert key == ("eu", 42)
    assert run(cs.fetch(key))["name"] == "Ada"
    assert s.execute_kwargs[0]["timeout"] == 2.0


def test_not_found_is_none():
    assert run(store(session()).fetch(("eu", 1))) is None


def test_named_tuple_rows_become_dicts():
    s = session(rows={("eu", 1): {"region": "eu", "id": 1, "name": "x", "amount": None}}, named_tuple_rows=True)
    assert run(store(s).fetch(("eu", 1))) == {"region": "eu", "id": 1, "name": "x", "amount": None}


def test_timeouts_are_retried_then_succeed():
    s = session(
        rows={("eu", 1): {"region": "eu", "id": 1, "name": "x", "amount": None}},
        failures={("eu", 1): [timeout(), read_timeout()]},
    )
    assert run(store(s, retries=3).fetch(("eu", 1)))["name"] == "x"
    assert len(s.executed) == 3


def test_retries_exhausted_is_cassandra_timeout():
    s = session(failures={("eu", 1): [timeout(), read_timeout(), timeout(), timeout()]})
    with pytest.raises(LookupFailed) as failure:
        run(store(s, retries=3).fetch(("eu", 1)))
    assert failure.value.reason == "CASSANDRA_TIMEOUT" and len(s.executed) == 4


def test_unavailable_exhausted_is_cassandra_unavailable():
    s = session(failures={("eu", 1): [unavailable()] * 2})
    with pytest.raises(LookupFailed) as failure:
        run(store(s, retries=1).fetch(("eu", 1)))
    assert failure.value.reason == "CASSANDRA_UNAVAILABLE"


def test_a_non_retryable_error_is_not_retried():
    s = session(failures={("eu", 1): [invalid()]})
    with pytest.raises(LookupFailed) as failure:
        run(store(s).fetch(("eu", 1)))
    assert failure.value.reason == "CASSANDRA_ERROR" and len(s.executed) == 1


def test_in_flight_reads_are_bounded():
    s = session(delay_s=0.02)
    cs = store(s, max_in_flight=5)

    async def many():
        await asyncio.gather(*(cs.fetch(("eu", i)) for i in range(40)))

    run(many())
    assert s.max_in_flight == 5


def test_bad_key_text_is_a_lookup_failure():
    cs = store(session())
    with pytest.raises(LookupFailed) as failure:
        cs.key_from_pk('["eu","not-a-number"]')
    assert failure.value.reason == "INVALID_PK"
    with pytest.raises(LookupFailed):
        cs.key_from_pk("only-one-component")


@pytest.mark.parametrize("keyspace, table", [("nope", "customers"), ("shop", "nope")])
def test_missing_keyspace_or_table_refused(keyspace, table):
    with pytest.raises(StoreConfigError):
        CassandraStore(session(), keyspace, table)
