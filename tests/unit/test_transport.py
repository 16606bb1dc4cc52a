"""After a rebalance, partitions with no committed offset restart from the reset policy (dqhash.transport)."""

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from dqhash import tansu, transport
from dqhash.transport import RewindingConsumerThread, uncommitted

A, B, C = (TopicPartition("t", p) for p in range(3))


class FakeAIOKafkaConsumer:
    """What the consumer thread calls on aiokafka's consumer, recorded."""

    def __init__(self, committed):
        self.committed = committed
        self.calls = []

    async def seek_to_committed(self):
        self.calls.append(("committed",))
        return dict(self.committed)

    async def seek_to_beginning(self, *partitions):
        self.calls.append(("beginning", *partitions))

    async def seek_to_end(self, *partitions):
        self.calls.append(("end", *partitions))


def seek(committed, policy="earliest"):
    """Run the thread's seek against a fake consumer; the calls it made to aiokafka, and what it returned."""
    thread = RewindingConsumerThread.__new__(RewindingConsumerThread)
    fake = FakeAIOKafkaConsumer(committed)
    thread._ensure_consumer = lambda: fake
    thread.app = SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=policy))
    returned = asyncio.run(thread._seek_to_committed_or_reset())
    return fake.calls, returned


def test_partitions_without_a_usable_commit_are_those_with_none_or_zero():
    assert uncommitted({A: None, B: 5, C: 0}) == [A, C]
    assert uncommitted({B: 5}) == []


def test_uncommitted_partitions_are_rewound_to_the_beginning_after_seeking_to_committed():
    calls, returned = seek({A: None, B: 17, C: 0})
    assert calls == [("committed",), ("beginning", A, C)]
    assert returned == {A: None, B: 17, C: 0}  # Faust still sees "no commit" for A and C


def test_with_the_latest_policy_they_go_to_the_end():
    calls, _ = seek({A: None, B: 3}, policy="latest")
    assert calls == [("committed",), ("end", A)]


def test_nothing_is_rewound_when_every_partition_has_a_commit():
    calls, _ = seek({A: 4, B: 17})
    assert calls == [("committed",)]


@pytest.mark.parametrize("url, expected", [
    ("kafka://127.0.0.1:9092", transport.Transport),
    ("aiokafka://127.0.0.1:9092", transport.Transport),
    ("tansu://127.0.0.1:9092", tansu.Transport),
])
def test_every_broker_scheme_consumes_through_the_rewinding_consumer(url, expected):
    from dqhash.app import App

    app = App("transport-test", broker=url)
    assert type(app.transport) is expected
    assert issubclass(app.transport.Consumer, transport.Consumer)
    assert issubclass(tansu.TansuConsumerThread, RewindingConsumerThread)
