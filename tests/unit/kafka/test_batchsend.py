"""BatchSender against a stand-in producer that builds real aiokafka record batches."""

import asyncio

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from dqhash.core.records import Out
from dqhash.kafka.batch_sender import BatchSender


class Producer:
    """create_batch / send_batch / partitions_for, as aiokafka's; batches are kept, decoded, and acknowledged."""

    def __init__(self, batch_size=16_384, partitions=4):
        self.batch_size, self.partitions = batch_size, partitions
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes, list]]]] = []
        self.next_offset: dict = {}
        self.deliveries = []

    def create_batch(self):
        return BatchBuilder(self.batch_size, 0)

    async def partitions_for(self, topic):
        return set(range(self.partitions))

    async def send_batch(self, batch, topic, *, partition):
        data = batch._build()
        records = [(r.key, r.value, list(r.headers)) for r in DefaultRecordBatch(bytes(data))]
        self.sent.append((topic, partition, records))
        base = self.next_offset.get((topic, partition), 0)
        self.next_offset[topic, partition] = base + len(records)
        delivered = asyncio.get_running_loop().create_future()
        self.deliveries.append((delivered, base))
        return delivered

    def acknowledge_all(self):
        from aiokafka.structs import RecordMetadata

        for future, base in self.deliveries:
            future.set_result(RecordMetadata("t", 0, None, base, -1, 0, -1))


@pytest.mark.asyncio
async def test_records_are_grouped_per_topic_partition_in_order_and_keyed_as_kafka_would():
    producer = Producer()
    sender = BatchSender(lambda: producer)
    keys = [f"pk-{i}".encode() for i in range(20)]
    outs = [Out("audit", k, b"v" + k, [("h", b"1")]) for k in keys] + [Out("rekey", b"x", b"y", None, 3)]
    assert await sender.send(outs) == len({o[:2] for o in producer.sent})
    partitioner = DefaultPartitioner()
    for topic, partition, records in producer.sent:
        if topic == "audit":
            assert all(partitioner(k, [0, 1, 2, 3], [0, 1, 2, 3]) == partition for k, _, _ in records)
            assert all(v == b"v" + k and h == [("h", b"1")] for k, v, h in records)
    audit_keys = [k for topic, _, records in producer.sent if topic == "audit" for k, _, _ in records]
    assert sorted(audit_keys) == sorted(keys)
    for _, _partition, records in producer.sent:  # arrival order kept within a partition
        ks = [k for k, _, _ in records]
        assert ks == [k for k in keys if k in ks] or ks == [b"x"]
    assert ("rekey", 3, [(b"x", b"y", [])]) in producer.sent


@pytest.mark.asyncio
async def test_a_full_batch_is_sent_and_another_started_and_delivery_reports_the_last_offset():
    producer = Producer(batch_size=1_000)
    sender = BatchSender(lambda: producer)
    delivered = []
    sender.on_delivered["changelog"] = lambda partition, offset: delivered.append((partition, offset))
    outs = [Out("changelog", f"k{i}".encode(), b"x" * 100, None, 1) for i in range(24)]
    outs.append(Out("changelog", b"big", b"x" * 5_000, None, 1))  # bigger than a batch: a batch of its own
    assert await sender.send(outs) >= 3
    assert sum(len(records) for _, _, records in producer.sent) == 25
    assert producer.sent[-1][2] == [(b"big", b"x" * 5_000, [])]
    producer.acknowledge_all()
    await asyncio.sleep(0)  # done callbacks run on the next loop turn
    sizes = [len(records) for _, _, records in producer.sent]
    ends = [sum(sizes[: i + 1]) - 1 for i in range(len(sizes))]
    assert delivered == [(1, end) for end in ends]


@pytest.mark.asyncio
async def test_unkeyed_records_go_round_robin():
    producer = Producer()
    await BatchSender(lambda: producer).send([Out("dlq", None, b"v") for _ in range(8)])
    assert sorted(p for _, p, _ in producer.sent) == [0, 1, 2, 3]
