"""dqhash.kafka.taps: the buffer between the consumer and an agent (whole fetched batches, bounded)."""

import asyncio
from types import SimpleNamespace

from aiokafka import TopicPartition

from dqhash.kafka.taps import Chunk, Tap

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


def chunk(tp, *offsets):
    return Chunk(tp, [SimpleNamespace(offset=o) for o in offsets], seeks=1, generation=1)


def offsets(chunks):
    return [(c.tp.partition, [r.offset for r in c.records]) for c in chunks]


def test_get_takes_everything_buffered_in_order():
    tap = Tap(maxsize=100)
    tap.put(chunk(A, 1, 2))
    tap.put(chunk(B, 7))
    tap.put(chunk(A, 3))
    assert offsets(asyncio.run(tap.get(1000))) == [(0, [1, 2]), (1, [7]), (0, [3])]
    assert tap.size == 0


def test_a_chunk_larger_than_the_batch_is_split_and_its_rest_comes_next():
    tap = Tap(maxsize=100)
    tap.put(chunk(A, 1, 2, 3, 4, 5))
    assert offsets(tap.take(3)) == [(0, [1, 2, 3])]
    assert offsets(tap.take(3)) == [(0, [4, 5])]
    assert tap.take(3) == []


def test_get_waits_for_a_chunk():
    async def run():
        tap = Tap(maxsize=10)
        getter = asyncio.create_task(tap.get(10))
        await asyncio.sleep(0)
        assert not getter.done()
        tap.put(chunk(A, 4))
        return offsets(await asyncio.wait_for(getter, 5))

    assert asyncio.run(run()) == [(0, [4])]


def test_a_full_tap_makes_the_consumer_wait_until_the_agent_takes():
    async def run():
        tap = Tap(maxsize=3)
        tap.put(chunk(A, 1, 2, 3))
        assert tap.full
        waiter = asyncio.create_task(tap.wait_space())
        await asyncio.sleep(0)
        assert not waiter.done(), "full: the consumer must wait"
        tap.take(2)
        await asyncio.wait_for(waiter, 5)
        return tap.size

    assert asyncio.run(run()) == 1


def test_clear_drops_what_is_buffered_and_frees_the_space():
    tap = Tap(maxsize=2)
    tap.put(chunk(A, 1, 2))
    assert tap.clear() == 2 and tap.size == 0 and not tap.full and tap.take(10) == []
