"""The agents under Faust's test tooling (memory store, no broker): fast checks of the glue.

The module builds its own runtime (``dqhash.runtime.build``) from the settings it wants; the e2e tests cover
the same paths against a real broker.
"""

import asyncio
import hashlib
import tempfile

import orjson
import pytest

from dqhash import settings as settings_module
from dqhash.core.partitioning import partition_for
from dqhash.runtime import build

SETTINGS = settings_module.load(
    {
        "DQHASH_STORE": "memory://",
        "DQHASH_METRICS_ENABLED": "false",
        "DQHASH_PARTITIONS": "4",
        "DQHASH_DATA_DIR": tempfile.mkdtemp(prefix="dqhash-agents-"),
    }
)
RUNTIME = build(SETTINGS)
agents = RUNTIME.parts["reconciler"]

H = hashlib.sha256(b"row").hexdigest()


CHANGELOG = "dqhash-pairs-changelog"


@pytest.fixture
def produced(monkeypatch):
    """Capture everything the agents produce (changelog records included) instead of sending it."""
    outs = []

    async def capture(records):
        outs.extend(records)

    monkeypatch.setattr(agents.checkpoint, "produce", capture)
    return outs


@pytest.fixture
def sent(produced):
    """The outputs the agents produce, without the table's changelog records (a view of ``produced``)."""

    class Outputs(list):
        def __iter__(self):
            return (o for o in produced if o.topic != CHANGELOG)

        def __getitem__(self, i):
            return list(self)[i]

    return Outputs()


def onprem(pk, action="UPDATE", event_ts=1_714_564_800_000):
    return orjson.dumps(
        {
            "event_id": f"e-{pk}",
            "hash_onprem": H,
            "partitionColumns": [{"type": "PK", "value": pk}],
            "event_ts": event_ts,
            "action": action,
        }
    )


def fetched(tp, offset, key, value):
    """A record as the consumer hands it to a tap (the fields of aiokafka's ``ConsumerRecord`` the agents read)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        topic=tp.topic,
        partition=tp.partition,
        offset=offset,
        key=key,
        value=value,
        headers=(),
        timestamp=1_714_564_800_000,
    )


@pytest.mark.asyncio
async def test_onprem_then_cloud_match_through_the_agents(sent):
    pk = "agent-pk-1"
    partition = partition_for(pk, 4)
    async with agents.onprem_events.test_context() as onprem_agent:
        await onprem_agent.put(onprem(pk), key=pk.encode(), partition=partition)
    async with agents.cloud_hashes.test_context() as cloud_agent:
        await cloud_agent.put(
            orjson.dumps({"pk": pk, "hash_cloud": H, "cloud_ts": 1_714_564_800_100}),
            key=pk.encode(),
            partition=partition,
        )
    audits = [orjson.loads(o.value) for o in sent if o.topic == "dq-audit"]
    assert [(a["pk"], a["status"]) for a in audits] == [(pk, "MATCH")]


@pytest.mark.asyncio
async def test_bad_record_dead_lettered_and_agent_keeps_going(sent):
    pk = "agent-pk-2"
    partition = partition_for(pk, 4)
    async with agents.onprem_events.test_context() as agent:
        await agent.put(b"{nope", key=b"x", partition=partition)
        await agent.put(onprem(pk, action="DELETE"), key=pk.encode(), partition=partition)
    assert [o.topic for o in sent] == ["dq-dlq", "dq-audit"]
    assert dict(sent[0].headers)["dq.error.reason"] == b"INVALID_JSON"


@pytest.mark.asyncio
async def test_unexpected_error_in_processing_is_dead_lettered(sent, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(agents.reconciler, "_on_input", explode)
    async with agents.onprem_events.test_context() as agent:
        await agent.put(onprem("agent-pk-3"), key=b"k", partition=0)
        await agent.put(onprem("agent-pk-4"), key=b"k", partition=0)
    reasons = [dict(o.headers)["dq.error.reason"] for o in sent]
    assert reasons == [b"PROCESSING_ERROR", b"PROCESSING_ERROR"]


@pytest.mark.asyncio
async def test_a_batch_writes_the_store_and_produces_the_changelog_of_each_key_once(produced):
    pk = "agent-pk-5"
    partition = partition_for(pk, 4)
    hour_later = 1_714_564_800_000 + 3_600_000  # a window of its own (the store outlives each test context)
    async with agents.onprem_events.test_context() as agent:
        await agent.put(onprem(pk, event_ts=hour_later), key=pk.encode(), partition=partition)
    async with agents.cloud_hashes.test_context() as agent:
        await agent.put(
            orjson.dumps({"pk": pk, "hash_cloud": H, "cloud_ts": hour_later + 100}),
            key=pk.encode(),
            partition=partition,
        )
    changelog = [o for o in produced if o.topic == CHANGELOG]
    pair_writes = [o for o in changelog if o.key == pk.encode()]
    assert len(pair_writes) == 2 and {o.partition for o in changelog} == {partition}  # one per batch
    assert agents.pairs.data.data[pk.encode()] == pair_writes[-1].value  # the store holds what was logged
    window_writes = [o for o in changelog if o.key.startswith(b"\xff")]
    assert orjson.loads(window_writes[-1].value)["counts"] == {"MATCH": 1}


@pytest.mark.asyncio
async def test_the_changelog_is_queued_in_the_order_the_store_was_written(monkeypatch):
    """A batch whose produce waits (metadata, a full buffer) must not let a later batch's changelog overtake it."""
    from types import SimpleNamespace

    from dqhash.core.codec import decode_state
    from dqhash.core.records import SOURCE_CLOUD, SOURCE_ONPREM

    pk = "agent-pk-6"
    partition = partition_for(pk, 4)
    queued, first_waits, release = [], asyncio.Event(), asyncio.Event()

    async def slow_first_produce(outs):
        if not first_waits.is_set():
            first_waits.set()
            await release.wait()
        queued.extend(outs)

    monkeypatch.setattr(agents.checkpoint, "produce", slow_first_produce)

    def event(topic, offset, value):
        return SimpleNamespace(
            message=SimpleNamespace(
                topic=topic,
                partition=partition,
                offset=offset,
                key=pk.encode(),
                value=value,
                headers=[],
                timestamp=None,
            )
        )

    hours_later = 1_714_564_800_000 + 7_200_000
    settings = SETTINGS
    first = event(settings.onprem_topic, 0, onprem(pk, event_ts=hours_later))
    second = event(settings.cloud_topic, 0, orjson.dumps({"pk": pk, "hash_cloud": H, "cloud_ts": hours_later + 100}))
    pending = asyncio.create_task(agents.process([agents.input_of(SOURCE_ONPREM, first.message)], SOURCE_ONPREM))
    await asyncio.wait_for(first_waits.wait(), 5)
    matched = asyncio.create_task(agents.process([agents.input_of(SOURCE_CLOUD, second.message)], SOURCE_CLOUD))
    for _ in range(20):  # let the second batch run as far as it can while the first one's produce waits
        await asyncio.sleep(0)
    applied = decode_state(agents.pairs.data.data[pk.encode()])
    assert applied.tracked.status == "MATCH", "the second batch is applied meanwhile, not held up"
    assert queued == [], "nothing of the second batch is queued before the first batch's outputs"
    release.set()
    await asyncio.wait_for(asyncio.gather(pending, matched), 5)
    replayed = {}
    for out in queued:
        if out.topic == CHANGELOG:
            replayed[out.key] = out.value
    assert replayed[pk.encode()] == agents.pairs.data.data[pk.encode()], (
        "replaying the changelog in queue order must end on the value the store holds"
    )


@pytest.mark.asyncio
async def test_the_tap_loop_applies_current_chunks_and_acknowledges_them_after_their_outputs(sent):
    """Whole fetches from the consumer (dqhash.kafka.taps): a chunk fetched before a seek or a rebalance is
    neither applied nor acknowledged (read again); the rest are, once their outputs are queued."""
    from aiokafka import TopicPartition

    from dqhash.core.records import SOURCE_ONPREM
    from dqhash.kafka.taps import Chunk, Tap

    settings = SETTINGS
    pks = ["agent-tap-1", "agent-tap-2"]
    tps = [TopicPartition(settings.onprem_topic, partition_for(pk, 4)) for pk in pks]

    def rec(tp, pk, offset):
        return fetched(tp, offset, pk.encode(), onprem(pk, action="DELETE"))

    current, stale = (Chunk(tp, [rec(tp, pk, 7)], seeks=1, generation=1) for tp, pk in zip(tps, pks))
    stale = stale._replace(seeks=0)
    acked, outputs_when_acked, done = [], [], asyncio.Event()

    class Consumer:
        def is_current(self, chunk):
            return chunk.seeks == 1

        def ack_chunk(self, chunk):
            outputs_when_acked.append(len(list(sent)))
            acked.append(chunk)
            done.set()  # a batch acknowledges its chunks in one go: all of them are in when this wakes up

    tap = Tap(maxsize=100)
    tap.put(current)
    tap.put(stale)
    loop = asyncio.create_task(agents.consume_tap(tap, SOURCE_ONPREM, Consumer()))
    try:
        await asyncio.wait_for(done.wait(), 5)
    finally:
        loop.cancel()
    assert acked == [current], "only the current chunk is acknowledged"
    assert [(orjson.loads(o.value)["pk"], orjson.loads(o.value)["status"]) for o in sent if o.topic == "dq-audit"] == [
        (pks[0], "SKIPPED_DELETE")
    ], "the stale chunk is not applied"
    assert outputs_when_acked == [1], "acknowledged after its outputs were queued"


@pytest.mark.asyncio
async def test_ticks_buffered_together_are_applied_and_published_one_at_a_time(produced, monkeypatch):
    """Each tick sweeps up to SWEEP_BATCH due deadlines, and a batch holds what it makes until its end: ticks of
    a partition read together (an agent behind on the tick topic) must not become one batch holding every sweep."""
    from aiokafka import TopicPartition

    from dqhash.core.records import SOURCE_TICK
    from dqhash.core.ticks import encode_tick
    from dqhash.kafka.taps import Chunk, Tap

    tp = TopicPartition(SETTINGS.tick_topic, 1)
    ticks = [fetched(tp, offset, None, encode_tick(1_714_564_800_000, 1_714_564_800_000)) for offset in (40, 41, 42)]
    applied, acked_before = [], []
    process = agents.reconciler.process

    def spy(inputs):
        acked_before.append(len(acked))
        applied.append([i.offset for i in inputs])
        return process(inputs)

    monkeypatch.setattr(agents.reconciler, "process", spy)
    acked, done = [], asyncio.Event()

    class Consumer:
        def is_current(self, chunk):
            return True

        def ack_chunk(self, chunk):
            acked.extend(r.offset for r in chunk.records)
            if len(acked) == len(ticks):
                done.set()

    tap = Tap(maxsize=100)
    tap.put(Chunk(tp, ticks, seeks=0, generation=1))
    loop = asyncio.create_task(agents.consume_tap(tap, SOURCE_TICK, Consumer()))
    try:
        await asyncio.wait_for(done.wait(), 5)
    finally:
        loop.cancel()
    assert applied == [[40], [41], [42]], f"each tick is a batch of its own, got batches {applied}"
    assert acked_before == [0, 1, 2], f"each tick is committed before the next is applied, got {acked_before}"
    assert acked == [40, 41, 42], "every tick is acknowledged, in order"
