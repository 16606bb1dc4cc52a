"""Audit rows to Cassandra, as a task of the worker with its own consumer group.

Not a Faust agent on purpose: a Faust stream that blocks during a Cassandra outage back-pressures the
worker's shared consumer and would stall reconciliation. Its own group turns an outage into lag on the
audit topic.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from dqhash.cloud.audit_sink import AuditSinkRunner, CassandraAuditSink
from dqhash.cloud.factory import cassandra_session
from dqhash.core.records import Out
from dqhash.kafka.security import connect_args

if TYPE_CHECKING:
    from dqhash.runtime import Runtime

log = logging.getLogger("dqhash.agents.cassandra_audit")


def register(runtime: Runtime) -> Any:
    app, settings, outputs = runtime.app, runtime.settings, runtime.outputs

    def connect() -> CassandraAuditSink:
        return CassandraAuditSink(
            cassandra_session(settings),
            settings.cassandra_audit_keyspace,
            retries=settings.cassandra_retries,
            ttl_days=settings.audit_ttl_days,
        )

    async def send_dlq(key: bytes | None, value: bytes | None, headers: Any) -> None:
        await outputs.produce([Out(settings.dlq_topic, key, value, headers)])

    async def cassandra_audit() -> None:
        delay = 1.0
        while True:
            try:
                sink = await asyncio.get_running_loop().run_in_executor(None, connect)
                break
            except Exception as exc:  # keep trying; reconciliation is not affected
                log.warning("cannot reach Cassandra for audit rows (%s); retrying in %.0fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60)
        runner = AuditSinkRunner(
            sink, connect_args(settings), settings.audit_topic, f"{settings.app_id}-audit-cassandra", send_dlq
        )
        log.info("writing audit rows to Cassandra keyspace %s", settings.cassandra_audit_keyspace)
        await runner.run()

    return app.task(cassandra_audit)
