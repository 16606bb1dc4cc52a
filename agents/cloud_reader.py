"""The cloud hash reader's agent: lookup requests → cloud rows → Topic-2.

Runs in every worker (``DQHASH_ROLE=all`` with ``DQHASH_LOOKUPS=true``) or in workers of its own
(``DQHASH_ROLE=producer``, consumer group ``<app>-producer``). Requests are taken in batches so reads run
concurrently up to the store's in-flight limit; the agent writes no tables, so batching is safe here.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from dqhash.cloud.factory import build_reader
from dqhash.core.lookups import decode_request
from dqhash.core.outputs import dlq_headers
from dqhash.core.records import Out

if TYPE_CHECKING:
    from dqhash.runtime import Runtime

log = logging.getLogger("dqhash.agents.cloud_reader")


def register(runtime: Runtime) -> Any:
    app, settings, metrics, outputs = runtime.app, runtime.settings, runtime.metrics, runtime.outputs
    lookup_topic = outputs.copartitioned_topic(settings.lookup_topic, internal=True)

    async def cloud_lookups(stream: Any) -> None:
        """Serve lookups: read the row by PK, hash it, publish to Topic-2."""
        try:
            reader = build_reader(settings, metrics)
        except Exception as exc:  # a reader that cannot work must not look alive
            log.critical("the cloud hash producer cannot start: %s", exc)
            print(f"dqhash: the cloud hash producer cannot start: {exc}", file=sys.stderr)
            await app.crash(exc)
            return
        async for events in stream.take_events(settings.cassandra_max_in_flight, within=0.05):
            requests, rejected = [], []
            for event in events:
                message = event.message
                try:
                    requests.append(decode_request(message.value, message.partition, message.offset))
                except Exception as exc:  # never dropped silently: dead-lettered with the reason
                    log.warning(
                        "unreadable lookup request at %s[%d]@%d: %s",
                        message.topic,
                        message.partition,
                        message.offset,
                        exc,
                    )
                    headers = dlq_headers(
                        "INVALID_LOOKUP_REQUEST",
                        f"{type(exc).__name__}: {exc}",
                        message.topic,
                        message.partition,
                        message.offset,
                        message.headers,
                    )
                    rejected.append(Out(settings.dlq_topic, message.key, message.value or b"", headers))
            await outputs.produce(rejected + await reader.handle(requests))

    return app.agent(lookup_topic, name=f"{__name__}.cloud_lookups", concurrency=1)(cloud_lookups)
