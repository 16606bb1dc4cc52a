"""Faust's aiokafka transport with one fix: a partition with no committed offset restarts from the reset policy
after every rebalance.

Why: when a rebalance stops the flow while a fetch is in flight, Faust's ``Consumer.getmany`` drops the records
that fetch returns, yet aiokafka's position has already moved past them. Faust then seeks every assigned
partition to its committed offset — except partitions with none (aiokafka seeks only to offsets > 0), which keep
the advanced position, so their first records are never processed. Seen on failover: a worker took over
the partitions of a worker killed before its first commit, dropped one fetch of them during the rebalance, and
never consumed those records (1 to 3 runs in 6 of the kill -9 test; 13 of 13 exact with this fix). Rewinding such partitions is what a
fresh assignment would do anyway; records processed again are recognised by the reconciler's applied offsets.

Used for ``kafka://`` and ``aiokafka://`` (see ``dqhash.app.App``) and, through ``dqhash.tansu``, for the
embedded broker.
"""

from __future__ import annotations

import logging
from typing import Mapping

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as stock
from faust.types import TP

log = logging.getLogger(__name__)


def uncommitted(committed: Mapping) -> list:
    """Partitions whose committed offset does not move the fetch position (none, or 0)."""
    return [tp for tp, offset in committed.items() if offset is None or offset <= 0]


class RewindingConsumerThread(stock.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed_or_reset)

    async def _seek_to_committed_or_reset(self) -> Mapping[TP, int]:
        consumer = self._ensure_consumer()
        committed = await consumer.seek_to_committed()
        fresh = uncommitted(committed)
        if fresh:
            await reset_to_policy(consumer, fresh, self.app.conf.consumer_auto_offset_reset)
        return committed


async def reset_to_policy(consumer: AIOKafkaConsumer, partitions: list, policy: str) -> None:
    if policy == "latest":
        await consumer.seek_to_end(*partitions)
    else:
        await consumer.seek_to_beginning(*partitions)
    log.debug("no committed offset: %s reset to %s", partitions, policy)


class Consumer(stock.Consumer):
    def _new_consumer_thread(self) -> RewindingConsumerThread:
        return RewindingConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(stock.Transport):
    Consumer = Consumer
