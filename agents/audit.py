"""Audit rows to Cassandra, as a task of the worker with its own consumer group.

Not a Faust agent on purpose: a Faust stream that blocks during a Cassandra
outage back-pressures the worker's shared consumer and would stall
reconciliation. Its own group turns an outage into lag on the audit topic.
"""

from __future__ import annotations

import asyncio
import logging

from dqhash.agents import produce
from dqhash.app import app, settings
from dqhash.auditsink import AuditSinkRunner, CassandraAuditSink
from dqhash.cloud import cassandra_session
from dqhash.reconciler import Out

log = logging.getLogger("dqhash.agents.audit")


def _connect() -> CassandraAuditSink:
    return CassandraAuditSink(cassandra_session(settings), settings.cassandra_audit_keyspace, retries=settings.cassandra_retries,
                              ttl_days=settings.audit_ttl_days)


async def _send_dlq(key, value, headers) -> None:
    await produce([Out(settings.dlq_topic, key, value, headers)])


@app.task
async def cassandra_audit() -> None:
    delay = 1.0
    while True:
        try:
            sink = await asyncio.get_running_loop().run_in_executor(None, _connect)
            break
        except Exception as exc:  # keep trying; reconciliation is not affected
            log.warning("cannot reach Cassandra for audit rows (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60)
    runner = AuditSinkRunner(sink, settings.bootstrap_servers, settings.audit_topic,
                             f"{settings.app_id}-audit-cassandra", _send_dlq)
    log.info("writing audit rows to Cassandra keyspace %s", settings.cassandra_audit_keyspace)
    await runner.run()
