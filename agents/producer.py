"""The cloud hash producer's agent: lookup requests → cloud rows → Topic-2.

Runs in every worker (``DQHASH_ROLE=all`` with ``DQHASH_LOOKUPS=true``) or in
workers of its own (``DQHASH_ROLE=producer``, consumer group ``<app>-producer``).
Requests are taken in batches so reads run concurrently up to the store's
in-flight limit; the agent writes no tables, so batching is safe here.
"""

from __future__ import annotations

import logging
import sys

from dqhash.agents import copartitioned_topic, produce
from dqhash.audit import dlq_headers
from dqhash.reconciler import Out
from dqhash.app import app, metrics, settings
from dqhash.cloud import build_producer
from dqhash.requests import decode_request

log = logging.getLogger("dqhash.agents.producer")

lookup_topic = copartitioned_topic(settings.lookup_topic, internal=True)


@app.agent(lookup_topic, concurrency=1)
async def cloud_lookups(stream):
    """Serve lookups: read the row by PK, hash it, publish to Topic-2."""
    try:
        producer = build_producer(settings, metrics)
    except Exception as exc:  # a producer that cannot work must not look alive
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
                log.warning("unreadable lookup request at %s[%d]@%d: %s", message.topic, message.partition,
                            message.offset, exc)
                headers = dlq_headers("INVALID_LOOKUP_REQUEST", f"{type(exc).__name__}: {exc}", message.topic,
                                      message.partition, message.offset, message.headers)
                rejected.append(Out(settings.dlq_topic, message.key, message.value or b"", headers))
        await produce(rejected + await producer.handle(requests))
