"""The checkpoint (dqhash.delivery.checkpoint): the order of publishing, the lease rule, acknowledgement and
revocation, driven directly with a lease clock the test moves and heartbeats it sends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import SimpleNamespace

import pytest

from dqhash.core.partitioning import partition_for
from dqhash.core.records import Out
from dqhash.delivery.checkpoint import Batch, Checkpoint
from dqhash.internals.transport import Consumer as TappingConsumer
from dqhash.kafka.ownership import Ownership
from dqhash.settings import load
from tests.unit.internals.test_fencing import MemoryTable

WAIT_S = 5


class Rig:
    """A checkpoint on a memory table, a consumer group member of generation 1, and a lease clock."""

    def __init__(self, session_timeout: float = 10.0) -> None:
        self.clock = [100.0]
        self.produced: list[list[Out]] = []
        self.acknowledged: list[str] = []
        self.release_produce: asyncio.Event | None = None
        consumer = object.__new__(TappingConsumer)
        consumer.heartbeats = []
        self.consumer = consumer
        self.app = SimpleNamespace(consumer=consumer, consumer_generation_id=1)
        self.table = MemoryTable()
        settings = replace(load({"DQHASH_PARTITIONS": "4"}), session_timeout=session_timeout)
        self.checkpoint = Checkpoint(self.app, self.table, settings, self.produce)
        self.checkpoint.ownership = Ownership(session_timeout, clock=lambda: self.clock[0])

    async def produce(self, outs: list[Out]) -> None:
        if self.release_produce is not None:
            await self.release_produce.wait()
        self.produced.append(outs)

    def batch(self, name: str, generation: int = 1) -> Batch:
        async def acknowledge() -> None:
            self.acknowledged.append(name)

        return Batch([Out("dq-audit", name.encode(), b"{}")], generation, 1, acknowledge)

    def heartbeat(self, sent_at: float, generation: int = 1) -> None:
        self.consumer.heartbeats[0](sent_at, generation)

    def names(self) -> list[str]:
        return [outs[0].key.decode() for outs in self.produced]


async def assigned(rig: Rig, partitions: set[int] | None = None) -> None:
    rig.checkpoint.assigned(rig.consumer, rig.app.consumer_generation_id, partitions or set())


async def pending(task: asyncio.Task, what: str) -> None:
    """Lets every other task run until it waits on something; the task must still be waiting."""
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done(), what


def test_outputs_are_produced_in_the_order_batches_were_applied_and_acknowledged_after_them():
    async def scenario() -> Rig:
        rig = Rig()
        await assigned(rig)
        rig.release_produce = asyncio.Event()
        first = asyncio.create_task(rig.checkpoint.commit(rig.batch("first")))
        second = asyncio.create_task(rig.checkpoint.commit(rig.batch("second")))
        await pending(second, "the second batch waits for the first one's outputs")
        assert rig.produced == [] and rig.acknowledged == []
        rig.release_produce.set()
        assert await asyncio.wait_for(asyncio.gather(first, second), WAIT_S) == [True, True]
        return rig

    rig = asyncio.run(scenario())
    assert rig.names() == ["first", "second"]
    assert rig.acknowledged == ["first", "second"]


def test_a_batch_applied_before_a_pause_is_published_once_a_heartbeat_of_its_generation_renews_the_lease():
    async def scenario() -> Rig:
        rig = Rig()
        await assigned(rig)
        rig.clock[0] = 130.0  # woke from a pause longer than the lease
        commit = asyncio.create_task(rig.checkpoint.commit(rig.batch("paused")))
        await pending(commit, "no output without the lease")
        assert rig.produced == []
        rig.heartbeat(130.5)
        assert await asyncio.wait_for(commit, WAIT_S) is True
        return rig

    rig = asyncio.run(scenario())
    assert rig.names() == ["paused"] and rig.acknowledged == ["paused"]


def test_a_revocation_settles_a_batch_waiting_for_the_lease_drops_it_and_wipes_the_lapsed_partitions():
    """The revocation goes through the same queue: it neither waits for a lease that will not come back (a
    deadlock) nor lets the dropped batch's outputs out; the local state of the lapsed partitions is wiped."""
    mine = next(pk for pk in (f"pk-{i}" for i in range(100)) if partition_for(pk, 4) == 2)

    async def scenario() -> Rig:
        rig = Rig()
        rig.table.data.data[mine.encode()] = b"applied during the lapse"
        await assigned(rig, {2})
        rig.checkpoint.epochs.claim(2)
        rig.clock[0] = 130.0
        commit = asyncio.create_task(rig.checkpoint.commit(rig.batch("paused")))
        await pending(commit, "no output without the lease")
        await asyncio.wait_for(rig.checkpoint.revoke(), WAIT_S)
        assert await asyncio.wait_for(commit, WAIT_S) is False
        return rig

    rig = asyncio.run(scenario())
    assert rig.produced == [], "the batch's outputs are dropped: its records are read again by their owner"
    assert mine.encode() not in rig.table.data.data, "the lapsed partition's local state is wiped"
    assert rig.checkpoint.epochs.claimed(2) is None and rig.checkpoint.actives == set()


def test_a_batch_of_an_ended_generation_is_dropped_even_when_a_new_assignment_holds_the_lease():
    async def scenario() -> tuple[Rig, bool]:
        rig = Rig()
        await assigned(rig)
        rig.clock[0] = 130.0
        commit = asyncio.create_task(rig.checkpoint.commit(rig.batch("old", generation=1)))
        await pending(commit, "no output without the lease")
        rig.app.consumer_generation_id = 2
        await assigned(rig)  # reassigned without a revocation reaching this worker first
        return rig, await asyncio.wait_for(commit, WAIT_S)

    rig, published = asyncio.run(scenario())
    assert published is False and rig.produced == []


def test_a_revocation_without_a_lapse_waits_for_the_batch_being_produced_and_wipes_nothing():
    key = b"pk-kept"

    async def scenario() -> Rig:
        rig = Rig()
        rig.table.data.data[key] = b"published state"
        await assigned(rig, {0, 1, 2, 3})
        rig.release_produce = asyncio.Event()
        commit = asyncio.create_task(rig.checkpoint.commit(rig.batch("in flight")))
        await pending(commit, "its produce is held")
        revoke = asyncio.create_task(rig.checkpoint.revoke())
        await pending(revoke, "the revocation waits its turn behind the batch being produced")
        rig.release_produce.set()
        await asyncio.wait_for(asyncio.gather(commit, revoke), WAIT_S)
        return rig

    rig = asyncio.run(scenario())
    assert rig.names() == ["in flight"]
    assert rig.table.data.data[key] == b"published state"


def test_a_revocation_does_not_wait_longer_than_a_session_timeout_for_a_stuck_produce(caplog):
    async def scenario() -> Rig:
        rig = Rig(session_timeout=0.05)
        await assigned(rig, {1})
        rig.release_produce = asyncio.Event()
        commit = asyncio.create_task(rig.checkpoint.commit(rig.batch("stuck")))
        await pending(commit, "its produce is held")
        await asyncio.wait_for(rig.checkpoint.revoke(), WAIT_S)
        assert rig.checkpoint.actives == set()
        commit.cancel()
        return rig

    asyncio.run(scenario())
    assert "revoking them anyway" in caplog.text


@pytest.mark.asyncio
async def test_admit_keeps_current_chunks_and_waits_for_the_lease_first():
    rig = Rig()
    await assigned(rig)
    chunks = [SimpleNamespace(name="current", current=True), SimpleNamespace(name="stale", current=False)]
    consumer = SimpleNamespace(is_current=lambda chunk: chunk.current)
    assert [c.name for c in await rig.checkpoint.admit(chunks, consumer)] == ["current"]
    rig.clock[0] = 130.0
    admitted = asyncio.create_task(rig.checkpoint.admit(chunks, consumer))
    await pending(admitted, "nothing is applied without the lease")
    rig.heartbeat(130.5)
    assert [c.name for c in await asyncio.wait_for(admitted, WAIT_S)] == ["current"]
