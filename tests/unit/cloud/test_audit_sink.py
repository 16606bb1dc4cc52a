"""Audit rows in Cassandra, through the session double."""

import asyncio
from datetime import date

import pytest

from dqhash.cloud.audit_sink import COLUMNS, AuditWriteFailed, CassandraAuditSink, schema
from tests.cassandra_double import FakeSession, invalid, timeout
from tests.paths import ROOT

RECORD = {
    "audit_id": "a1b2",
    "pk": "42",
    "event_id": "e1",
    "status": "MISMATCH",
    "reason": "hashes differ",
    "late": False,
    "action": "UPDATE",
    "hash_onprem": "v2:aa",
    "hash_cloud": "v2:bb",
    "event_ts": "2024-05-01T23:59:59.500Z",
    "cloud_ts": "2024-05-02T00:00:01.000Z",
    "window_start": "2024-05-01T23:59:00.000Z",
    "classified_at": "2024-05-02T00:00:02.000Z",
    "rechecks": 2,
}


def sink(**kwargs):
    session = FakeSession("ks", "t", {"id": "text"}, ["id"])
    return session, CassandraAuditSink(session, "dqhash_audit", backoff_s=0.001, **kwargs)


def test_schema_created_with_bounded_partitions_ttl_and_twcs():
    session, _ = sink()
    by_day, by_pk = session.schema
    assert "PRIMARY KEY ((day, shard), audit_id)" in by_day and "PRIMARY KEY ((pk), event_ts, audit_id)" in by_pk
    for statement in session.schema:
        assert "default_time_to_live = 7776000" in statement and "TimeWindowCompactionStrategy" in statement
    assert all(p.is_idempotent for p in session.prepared)


def test_documented_cql_is_the_schema_the_sink_creates():
    text = (ROOT / "docs" / "cassandra-audit.cql").read_text()
    for statement in schema("dqhash_audit"):
        assert statement + ";" in text


def test_rows_are_deterministic_so_a_redelivery_upserts_the_same_rows():
    session, s = sink()
    asyncio.run(s.write(RECORD))
    asyncio.run(s.write(RECORD))
    day_rows = [values for query, values in session.writes if "audit_by_day" in query]
    assert day_rows[0] == day_rows[1]
    assert day_rows[0][0] == date(2024, 5, 1) and 0 <= day_rows[0][1] < 16  # the event's day, a shard
    pk_rows = [values for query, values in session.writes if "audit_by_pk" in query]
    columns = dict(zip(COLUMNS, pk_rows[0]))
    assert columns["pk"] == "42" and columns["rechecks"] == 2 and columns["differing_columns"] == []


def test_timeouts_are_retried():
    session, s = sink(retries=3)
    session.fail_next = [timeout(), timeout()]
    asyncio.run(s.write(RECORD))
    assert len(session.writes) == 2


def test_outage_beyond_the_retries_raises_with_a_reason():
    session, s = sink(retries=2)
    session.fail_next = [timeout()] * 3
    with pytest.raises(AuditWriteFailed) as failure:
        asyncio.run(s.write(RECORD))
    assert failure.value.reason == "AUDIT_WRITE_TIMEOUT"


def test_non_retryable_error_fails_at_once():
    session, s = sink()
    session.fail_next = [invalid()]
    with pytest.raises(AuditWriteFailed) as failure:
        asyncio.run(s.write(RECORD))
    assert failure.value.reason == "AUDIT_WRITE_FAILED" and session.writes == []
