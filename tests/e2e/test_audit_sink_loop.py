"""The audit sink's consumer loop on the embedded broker, Cassandra played by the session double."""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from dqhash.cloud.audit_sink import AuditSinkRunner, CassandraAuditSink
from dqhash.core.audit_schema import AUDIT_NAMES
from dqhash.core.outputs import DLQ_REASON
from dqhash.kafka.security import connect_args
from tests.cassandra_double import FakeSession, timeout
from tests.e2e.conftest import cloud, h, onprem

pytestmark = pytest.mark.e2e


def start_runner(pipeline, session):
    sink = CassandraAuditSink(session, "dqhash_audit", retries=1, backoff_s=0.01)
    stop = asyncio.Event()

    async def send_dlq(key, value, headers):
        producer = AIOKafkaProducer(**connect_args(pipeline.settings))
        await producer.start()
        try:
            await producer.send_and_wait(pipeline.settings.dlq_topic, value, key=key, headers=headers)
        finally:
            await producer.stop()

    runner = AuditSinkRunner(
        sink,
        connect_args(pipeline.settings),
        pipeline.settings.audit_topic,
        f"sink-{uuid.uuid4().hex[:6]}",
        send_dlq,
    )
    task = asyncio.run_coroutine_threadsafe(runner.run(stop), pipeline.loop)
    return runner, stop, task


def test_audit_records_become_cassandra_rows(pipeline):
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    pipeline.send_cloud(cloud(pk, h(pk)))
    [record] = pipeline.wait_audit(pk)
    session = FakeSession("ks", "t", {"id": "text"}, ["id"])
    runner, stop, task = start_runner(pipeline, session)
    try:
        pipeline.run(
            pipeline.reader.wait_for(
                lambda out: any(pk in values for query, values in list(session.writes) if "audit_by_pk" in query),
                30,
                lambda out: f"an audit_by_pk row for {pk}; writes so far {len(session.writes)}",
            )
        )
        rows = [dict(zip(AUDIT_NAMES, values)) for query, values in list(session.writes) if "audit_by_pk" in query]
        [row] = [row for row in rows if row["pk"] == pk]
        assert row["audit_id"] == record["audit_id"] and row["status"] == "MATCH" and row["table"] == "default"
    finally:
        pipeline.loop.call_soon_threadsafe(stop.set)
        task.result(30)


def test_cassandra_outage_dead_letters_rows_and_classification_goes_on(pipeline):
    session = FakeSession("ks", "t", {"id": "text"}, ["id"])
    session.fail_next = [timeout()] * 10_000  # Cassandra is down
    runner, stop, task = start_runner(pipeline, session)
    try:
        pk = pipeline.pk()
        pipeline.send_onprem(onprem(pk, h(pk)))
        pipeline.send_cloud(cloud(pk, h(pk)))
        assert pipeline.wait_audit(pk)[0]["status"] == "MATCH"  # reconciliation is not held up
        _, _, headers = pipeline.wait_dlq(
            lambda k, v, hd: hd.get(DLQ_REASON) == b"AUDIT_WRITE_TIMEOUT" and k == pk.encode()
        )
        assert headers["dq.source.topic"] == pipeline.settings.audit_topic.encode()
    finally:
        pipeline.loop.call_soon_threadsafe(stop.set)
        task.result(30)
