"""``tansu://`` — Faust's aiokafka transport, made to recover tables completely on the embedded broker.

Tansu's ListOffsets(latest) answers with the last stored batch's base offset
(+1) instead of the high watermark, so Faust's changelog recovery — which
reads up to those "end offsets" — stops early and loses the newest values.
The high watermark in a Fetch response is right. This transport takes the
listed end offsets, fetches once at each (with ``max_wait`` ≥ 1 ms: Tansu
answers a zero-wait fetch with no partitions) and uses the larger of the
listed offset and the fetch's high watermark.

Not changed, on purpose: Faust's fetch wait. Tansu holds every Fetch for its whole ``max_wait`` even when
records arrive meanwhile, which puts about a second on every hop through a topic; a shorter wait opened a
failover path that is not yet understood (docs/brokers.md tells what was measured).

Selected by the URL scheme only (``DQHASH_BROKER=tansu://host:port``, what the
embedded broker advertises); built on ``dqhash.internals.transport``, which ``kafka://`` uses too.
Registered through the ``faust.transports`` entry point in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types import TP

from dqhash.internals import transport
from dqhash.internals.transport import RewindingConsumerThread

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0


async def fetched_highwaters(bootstrap, listed: Mapping[TP, int], auth: Mapping[str, Any]) -> dict[TP, int]:
    """max(listed, fetch high watermark) per partition, from one fetch at the listed offset."""
    if not listed:
        return {}
    probe = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **auth,  # the worker's own TLS and SASL
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=1024,
    )
    await probe.start()
    try:
        probe.assign(list(listed))
        for tp, offset in listed.items():
            probe.seek(tp, max(offset - 1, 0))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROBE_TIMEOUT_S
        while any(probe.highwater(tp) is None for tp in listed) and loop.time() < deadline:
            await probe.getmany(timeout_ms=200)
        result = {}
        for tp, offset in listed.items():
            highwater = probe.highwater(tp)
            if highwater is None:
                log.warning(
                    "no fetch high watermark for %s within %.0fs; using the listed %d", tp, PROBE_TIMEOUT_S, offset
                )
            result[tp] = max(offset, highwater or 0)
        corrected = {tp: (listed[tp], result[tp]) for tp in listed if result[tp] != listed[tp]}
        if corrected:
            log.info("end offsets corrected from fetch high watermarks: %s", corrected)
        return result
    finally:
        await probe.stop()


class TansuConsumerThread(RewindingConsumerThread):
    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        listed = await super()._highwaters(partitions)
        bootstrap = self._ensure_consumer()._client._bootstrap_servers
        conf = self.app.conf
        auth = credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context)
        return await fetched_highwaters(bootstrap, dict(listed), auth)


class Consumer(transport.Consumer):
    def _new_consumer_thread(self) -> TansuConsumerThread:
        return TansuConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(transport.Transport):
    Consumer = Consumer
