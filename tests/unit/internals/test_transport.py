"""After a rebalance, partitions with no committed offset restart from the reset policy (dqhash.internals.transport)."""

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from intervaltree import IntervalTree

from dqhash.internals import tansu, transport
from dqhash.internals.transport import RewindingConsumerThread, uncommitted

A, B, C = (TopicPartition("t", p) for p in range(3))
CHANGELOG = TopicPartition("app-table-changelog", 0)


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

    async def position(self, tp):
        return {"beginning": 0, "end": 100}[self.calls[-1][0]] + tp.partition  # where the last seek put it


def seek(committed, policy="earliest"):
    """Run the thread's seek against a fake consumer; the calls it made to aiokafka, and what it returned."""
    thread = RewindingConsumerThread.__new__(RewindingConsumerThread)
    fake = FakeAIOKafkaConsumer(committed)
    thread._ensure_consumer = lambda: fake
    thread.app = SimpleNamespace(
        conf=SimpleNamespace(consumer_auto_offset_reset=policy),
        tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}),
    )
    returned = asyncio.run(thread._seek_to_committed_or_reset())
    return fake.calls, returned


def test_partitions_without_a_usable_commit_are_those_with_none_or_zero():
    assert uncommitted({A: None, B: 5, C: 0}) == [A, C]
    assert uncommitted({B: 5}) == []


def test_uncommitted_partitions_are_rewound_to_the_beginning_after_seeking_to_committed():
    calls, returned = seek({A: None, B: 17, C: 0, CHANGELOG: None})
    assert calls == [("committed",), ("beginning", A, C)]  # Faust's recovery places changelog partitions
    assert returned == {A: 0, B: 17, C: 2, CHANGELOG: None}  # where each will be read from: what commits extend


def test_with_the_latest_policy_they_go_to_the_end():
    calls, returned = seek({A: None, B: 3}, policy="latest")
    assert calls == [("committed",), ("end", A)]
    assert returned == {A: 100, B: 3}


def test_nothing_is_rewound_when_every_partition_has_a_commit():
    calls, _ = seek({A: 4, B: 17})
    assert calls == [("committed",)]


@pytest.mark.parametrize(
    "url, expected",
    [
        ("kafka://127.0.0.1:9092", tansu.Transport),  # a short ListOffsets answer is corrected on every scheme
        ("aiokafka://127.0.0.1:9092", tansu.Transport),
        ("tansu://127.0.0.1:9092", tansu.Transport),
    ],
)
def test_every_broker_scheme_consumes_through_the_rewinding_consumer(url, expected):
    from dqhash.internals.app import App

    app = App("transport-test", broker=url)
    assert type(app.transport) is expected
    assert issubclass(app.transport.Consumer, transport.Consumer)
    assert issubclass(tansu.TansuConsumerThread, RewindingConsumerThread)


@pytest.mark.parametrize(
    "acked, start, expected",
    [
        ([5, 6, 7], 5, 3),  # the records after the committed offset, in a row
        ([5, 6, 8, 9], 5, 2),  # up to the first hole
        ([6, 7, 8], 5, 0),  # offset 5 was read and not processed: nothing to commit past it
        ([1, 2, 3], 0, 0),  # a partition read from 0 whose first record was skipped (Faust commits 4)
        ([], 5, 0),
    ],
)
def test_a_commit_extends_the_committed_offset_only_by_acknowledged_records_in_a_row(acked, start, expected):
    assert transport.committable(acked, start) == expected


class Gaps:
    """Faust's IntervalTree of gaps, as ``_fill_gaps`` uses it."""

    def __init__(self, *spans):
        self.spans = [SimpleNamespace(begin=b, end=e) for b, e in spans]

    def __bool__(self):
        return bool(self.spans)

    def overlap(self, begin, end):
        return [s for s in self.spans if s.begin < end and s.end > begin]

    def chop(self, begin, end):
        self.spans = [s for s in self.spans if s.begin >= end]


def consumer_with(acked, committed, gaps=None):
    consumer = transport.Consumer.__new__(transport.Consumer)
    consumer._acked = {A: list(acked)}
    consumer._acked_index = {A: set(acked)}
    consumer._committed_offset = {A: committed}
    consumer._gap = {A: gaps or Gaps()}
    consumer._read_offset = {A: 9}
    consumer._starts, consumer._rereads = {A: committed or 0}, {}
    consumer.sought = []

    async def seek_in_thread(tp, offset):
        consumer.sought.append((tp, offset))

    async def seek_if_unmoved(tp, offset, seeks):
        consumer.sought.append((tp, offset, seeks))

    consumer._thread = SimpleNamespace(seek_in_thread=seek_in_thread, seek_if_unmoved=seek_if_unmoved, seeks={})
    consumer._fetched_seeks, consumer._handed_seeks = {}, {}
    consumer.taps, consumer._tapped = {}, {}
    return consumer


def test_the_consumer_commits_acknowledged_records_and_gaps_that_continue_the_committed_offset():
    consumer = consumer_with([3, 4, 6], committed=3, gaps=Gaps((5, 6)))
    assert consumer._new_offset(A) == 7
    assert consumer._acked[A] == [] and consumer._acked_index[A] == set()


def test_records_acknowledged_again_below_the_committed_offset_are_dropped():
    consumer = consumer_with([1, 2, 3, 4], committed=3)
    assert consumer._new_offset(A) == 5 and consumer._acked[A] == []


def test_a_record_read_and_never_processed_holds_the_commit_and_is_read_again():
    async def scenario():
        consumer = consumer_with([1, 2], committed=None)  # offset 0 was skipped
        assert consumer._new_offset(A) is None
        assert consumer._new_offset(A) is None  # asked again before the re-read: one seek, not two
        await asyncio.sleep(0)
        assert consumer.sought == [(A, 0)] and consumer._acked[A] == [1, 2]
        consumer._acked[A].append(0)  # re-read and processed
        assert consumer._new_offset(A) == 3 and consumer._rereads == {}

    asyncio.run(scenario())


def seeking_thread(seeks):
    """A consumer thread over a fake aiokafka consumer whose seeks are recorded in ``fake.sought``."""
    thread = RewindingConsumerThread.__new__(RewindingConsumerThread)
    fake = SimpleNamespace(sought=[])
    fake._fetcher = SimpleNamespace(
        seek_to=lambda tp, offset: fake.sought.append((tp, offset)), request_offset_reset=None
    )
    fake.seek = lambda tp, offset: fake._fetcher.seek_to(tp, offset)
    thread._ensure_consumer = lambda: fake
    thread.seeks = seeks
    transport.count_seeks(fake._fetcher, seeks)  # what ``on_start`` does with aiokafka's fetcher
    return thread, fake


def test_the_thread_counts_seeks_from_the_start_of_its_consumer(monkeypatch):
    fetcher = SimpleNamespace(seek_to=lambda tp, offset: None, request_offset_reset=None)

    async def stock_on_start(self):
        self._consumer = SimpleNamespace(_fetcher=fetcher)

    monkeypatch.setattr(transport.stock.AIOKafkaConsumerThread, "on_start", stock_on_start)
    thread = RewindingConsumerThread.__new__(RewindingConsumerThread)
    thread.seeks = {}
    asyncio.run(thread.on_start())
    fetcher.seek_to(A, 3)
    assert thread.seeks == {A: (1, 3)}


def test_the_seek_back_runs_in_the_consumer_thread():
    """aiokafka lives on the consumer thread's loop; a seek from the worker's loop left its fetcher asleep."""
    thread, fake = seeking_thread({})
    ran_in = []

    async def call_thread(method, *args):
        ran_in.append(method.__name__)
        return await method(*args)

    thread.call_thread = call_thread
    asyncio.run(thread.seek_in_thread(A, 7))
    assert ran_in == ["_seek"] and fake.sought == [(A, 7)] and thread.seeks == {A: (1, 7)}


def test_nothing_is_committed_or_re_read_before_the_seek_says_where_a_partition_starts():
    """Between an assignment and Faust's seek, records read from aiokafka's own position get acknowledged."""
    consumer = consumer_with([40, 41], committed=None)
    consumer._starts = {}
    assert consumer._new_offset(A) is None and consumer.sought == [] and consumer._acked[A] == [40, 41]
    consumer._starts = {A: 40}
    assert consumer._new_offset(A) == 42


def message(offset, seeks=0, tp=A):
    return SimpleNamespace(offset=offset, seeks=seeks, tp=tp, topic=tp.topic)


def drain(consumer, gaps=None):
    """Faust's own drain loop (``Consumer._drain_messages``) over one ``getmany`` of the consumer: the
    (partition, offset) pairs it hands on; the gaps it records, as (first, last) offsets, into ``gaps``."""

    async def run():
        handed, passes = [], []

        async def callback(message):
            handed.append((message.tp.partition, message.offset))

        real_getmany = consumer.getmany

        async def one_pass(timeout):
            async for item in real_getmany(timeout):
                yield item
            passes.append(1)

        async def wait_first(first, *others):
            for other in others:
                other.close()
            await first

        async def sleep(seconds):
            await asyncio.sleep(0)

        recorded = _GapsOf(gaps)
        consumer._gap = {A: recorded, B: recorded}
        consumer._committed_offset.setdefault(B, None)
        consumer.__dict__.update(
            callback=callback,
            getmany=one_pass,
            wait_first=wait_first,
            sleep=sleep,
            _commit_every=None,
            _stopped=asyncio.Event(),
            _crashed=asyncio.Event(),
            suspend_flow=asyncio.Event(),
            log=SimpleNamespace(dev=lambda *a, **k: None, exception=_raise),
            diag=SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None),
            app=SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: gaps is not None)),
        )
        fetcher = SimpleNamespace(_stopped=SimpleNamespace(is_set=lambda: bool(passes)))
        await transport.stock.Consumer._drain_messages(consumer, fetcher)
        await asyncio.sleep(0)  # lets a seek back scheduled by the wrapper run
        return handed

    return asyncio.run(run())


def _raise(message, *args):
    raise AssertionError(message % args)


class _GapsOf:
    """Faust's gap tree (``addi``: the end excluded), recorded as (first, last) offsets."""

    def __init__(self, into):
        self.into = into if into is not None else []

    def addi(self, begin, end):
        self.into.append((begin, end - 1))


@pytest.fixture
def fetches(monkeypatch):
    """Batches Faust's ``getmany`` returns, each as (the thread's seek counts when fetched, messages)."""
    batches = []

    async def stock_getmany(self, timeout):
        fetched_seeks, messages, *fetched = batches.pop(0)
        self._fetched_seeks = fetched_seeks  # what ``_wait_next_records`` sets
        self._fetched = fetched[0] if fetched else {}
        for msg in messages:
            yield msg.tp, msg

    monkeypatch.setattr(transport.stock.Consumer, "getmany", stock_getmany)
    return batches


def test_seeks_and_resets_are_counted_as_aiokafka_moves_the_partition():
    moved = []
    fetcher = SimpleNamespace(
        seek_to=lambda tp, offset: moved.append((tp, offset)),
        request_offset_reset=lambda tps, strategy: moved.append((tuple(tps), strategy)),
    )
    seeks = {}
    transport.count_seeks(fetcher, seeks)
    transport.count_seeks(fetcher, seeks)  # installed once
    fetcher.seek_to(A, 5)
    fetcher.seek_to(A, 9)
    fetcher.request_offset_reset([B], "earliest")
    assert seeks == {A: (2, 9), B: (1, None)} and moved == [(A, 5), (A, 9), ((B,), "earliest")]


def test_records_fetched_before_a_seek_of_their_partition_are_not_handed_out(fetches):
    """In a kill -9 run Faust's drain loop kept handing out records fetched before a seek back, raised its
    read offset past the sought offset, and dropped the re-fetched records as already read; the records
    after them were applied first and their window counts were lost."""
    consumer = consumer_with([], committed=5)
    consumer._read_offset = {A: 7}
    consumer._thread.seeks = {A: (2, 5), B: (1, 0)}  # A was sought back to 5 after the first batch was fetched
    fetches.append(({A: (1, 0), B: (1, 0)}, [message(8, 1), message(3, 1, B), message(9, 1)]))
    fetches.append(({A: (2, 5), B: (1, 0)}, [message(5, 2), message(6, 2), message(4, 1, B)]))
    assert drain(consumer) == [(1, 3)]  # B was not sought: its records still count
    assert drain(consumer) == [(0, 5), (0, 6), (1, 4)]


def test_a_first_record_past_the_sought_offset_is_a_gap_not_a_hole(fetches):
    """Offsets the log no longer has (compacted, control records) at the sought offset are not records
    read and never processed; recorded as a gap they are committed past."""
    consumer = consumer_with([], committed=5)
    consumer._thread.seeks = {A: (1, 5)}
    fetches.append(({A: (1, 5)}, [message(7, 1), message(8, 1)]))
    gaps = []
    assert drain(consumer, gaps) == [(0, 7), (0, 8)] and gaps == [(5, 6)]


def test_a_record_of_a_partition_sought_since_is_stale_and_its_acknowledgement_not_counted():
    consumer = acking_consumer(committed=5)
    consumer._thread.seeks = {A: (3, 5)}
    before, since = consumer_message(5), consumer_message(5)
    before.seeks, since.seeks = 2, 3
    before.tracked = since.tracked = True
    assert transport.is_stale(consumer, before) and not transport.is_stale(consumer, since)
    assert consumer.ack(before) is False and consumer._acked[A] == []
    assert consumer.ack(since) is True and consumer._acked[A] == [5]
    assert not transport.is_stale(SimpleNamespace(), before)  # another transport's consumer


def test_a_re_read_that_does_not_come_back_is_sought_again_later(monkeypatch):
    consumer = consumer_with([6, 7], committed=5)
    clock = [1000.0]
    monkeypatch.setattr(transport.time, "monotonic", lambda: clock[0])

    async def ask(times):
        for _ in range(times):
            assert consumer._new_offset(A) is None
            await asyncio.sleep(0)

    asyncio.run(ask(3))
    assert consumer.sought == [(A, 5)]
    clock[0] += transport.REREAD_RETRY_S
    asyncio.run(ask(1))
    assert consumer.sought == [(A, 5), (A, 5)]


def test_a_rebalance_forgets_pending_re_reads():
    consumer = consumer_with([6, 7], committed=5)
    consumer._rereads = {A: (5, 0.0)}
    consumer._starts = {A: 5}

    async def revoke():
        with pytest.MonkeyPatch.context() as patch:

            async def stock_revoked(self, revoked):
                pass

            patch.setattr(transport.stock.Consumer, "on_partitions_revoked", stock_revoked)
            await consumer.on_partitions_revoked({A})

    asyncio.run(revoke())
    assert consumer._rereads == {} and consumer._starts == {}


def consumer_message(offset, generation_id=1):
    from faust.types.tuples import ConsumerMessage

    return ConsumerMessage(A.topic, A.partition, offset, 0.0, 0, [], b"k", b"v", None, generation_id=generation_id)


def acking_consumer(committed, generation_id=1, flow_active=True):
    consumer = consumer_with([], committed=committed)
    consumer.app = SimpleNamespace(
        topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
        consumer_generation_id=generation_id,
        flow_control=SimpleNamespace(is_active=lambda: flow_active),
    )
    consumer._unacked_messages, consumer._waiting_for_ack, consumer._n_acked = set(), None, 0
    return consumer


@pytest.mark.parametrize("fetched_in, flow_active", [(0, True), (1, False)])
def test_a_record_the_stream_skipped_during_a_rebalance_is_not_counted_as_processed(fetched_in, flow_active):
    """Faust's stream acknowledges the records it skips (fetched in an earlier generation, or while flow is
    stopped) without processing them; counted, they would be committed past and lost if the worker died
    before reading them again."""
    consumer = acking_consumer(committed=5, flow_active=flow_active)
    skipped = consumer_message(5, generation_id=fetched_in)
    assert consumer.ack(skipped) is False and skipped.acked
    assert consumer._acked[A] == [] and consumer._n_acked == 0

    consumer.app.flow_control.is_active = lambda: True
    processed = consumer_message(6)
    processed.tracked = True  # a stream took it
    assert consumer.ack(processed) is True and consumer._acked[A] == [6]

    async def commit():
        assert consumer._new_offset(A) is None  # offset 5 holds the commit
        await asyncio.sleep(0)

    asyncio.run(commit())
    assert consumer.sought == [(A, 5)]  # and is read again


def test_a_record_processed_before_a_rebalance_still_counts():
    consumer = acking_consumer(committed=5, generation_id=2)
    processed = consumer_message(5, generation_id=1)
    processed.tracked = True
    assert consumer.ack(processed) is True and consumer._new_offset(A) == 6


def records(*offsets):
    return [SimpleNamespace(offset=offset) for offset in offsets]


def test_records_faust_fetched_and_did_not_hand_out_are_sought_back_to(fetches):
    """Faust's ``getmany`` stops a batch when the flow stops; aiokafka's position is already past it."""
    consumer = consumer_with([], committed=0)
    consumer._thread.seeks = {A: (1, None), B: (1, None)}
    fetches.append(
        ({A: (1, None), B: (1, None)}, [message(0, 1, B), message(1, 1, B)], {A: records(0, 1, 2), B: records(0, 1, 2)})
    )
    assert drain(consumer) == [(1, 0), (1, 1)]
    asyncio.run(asyncio.sleep(0))
    assert consumer.sought == [(A, 0, 1), (B, 2, 1)]


def test_nothing_is_sought_back_when_the_batch_was_handed_out_or_its_partition_sought_since(fetches):
    consumer = consumer_with([], committed=0)
    consumer._thread.seeks = {A: (2, 0), B: (1, None)}
    fetches.append(
        (
            {A: (1, None), B: (1, None)},
            [message(0, 1, A), message(0, 1, B), message(1, 1, B)],
            {A: records(0, 1), B: records(0, 1)},
        )
    )
    assert drain(consumer) == [(1, 0), (1, 1)]
    assert consumer.sought == []


def test_the_thread_seeks_back_only_if_no_seek_came_between():
    thread, fake = seeking_thread({A: (3, 5)})

    async def call_thread(method, *args):
        return await method(*args)

    thread.call_thread = call_thread
    asyncio.run(thread.seek_if_unmoved(A, 9, seeks=2))
    assert fake.sought == []
    asyncio.run(thread.seek_if_unmoved(A, 9, seeks=3))
    assert fake.sought == [(A, 9)] and thread.seeks[A] == (4, 9)


# --- taps: whole fetched batches straight to the agents --------------------------------------------------


def record(offset, tp=A):
    return SimpleNamespace(offset=offset, topic=tp.topic, partition=tp.partition)


def tapping_consumer(committed=5, thread_seeks=None, generation_id=1):
    from dqhash.kafka.taps import Tap

    consumer = acking_consumer(committed=committed, generation_id=generation_id)
    consumer.app.monitor = SimpleNamespace(track_tp_end_offset=lambda tp, highwater: None)
    consumer.flow_active, consumer._buffered_partitions = True, set()
    consumer.highwater = lambda tp: None
    consumer._read_offset = {}
    consumer._gap = {A: IntervalTree(), B: IntervalTree(), OTHER: IntervalTree()}  # Faust's own
    consumer._committed_offset = {A: committed, B: committed, OTHER: committed}
    consumer._acked, consumer._acked_index = {A: [], B: []}, {A: set(), B: set()}
    consumer._thread.seeks = thread_seeks if thread_seeks is not None else {A: (1, 5), B: (1, 5)}
    consumer._fetched_seeks = dict(consumer._thread.seeks)
    consumer.taps = {"t": Tap(maxsize=1000)}
    return consumer


OTHER = TopicPartition("other", 0)


def hand(consumer, records, active=None):
    return asyncio.run(consumer._hand_to_taps(records, active))


def test_a_tapped_topic_s_records_go_to_its_tap_a_partition_at_a_time_and_the_rest_to_faust():
    consumer = tapping_consumer()
    rest = hand(consumer, {A: [record(5), record(6)], OTHER: [record(5, OTHER)], B: [record(5, B)]})
    assert list(rest) == [OTHER]
    chunks = consumer.taps["t"].take(100)
    assert [(c.tp, [r.offset for r in c.records], c.seeks, c.generation) for c in chunks] == [
        (A, [5, 6], 1, 1),
        (B, [5], 1, 1),
    ]
    assert consumer._tapped == {A: 6, B: 5} and consumer._read_offset[A] == 6


def test_records_fetched_before_their_partition_was_sought_are_not_tapped():
    consumer = tapping_consumer(thread_seeks={A: (2, 5), B: (1, 5)})
    consumer._fetched_seeks = {A: (1, 0), B: (1, 5)}
    hand(consumer, {A: [record(9)], B: [record(5, B)]})
    assert [c.tp for c in consumer.taps["t"].take(100)] == [B] and A not in consumer._tapped


def test_nothing_is_tapped_while_the_flow_is_stopped_or_for_an_inactive_partition():
    consumer = tapping_consumer()
    hand(consumer, {A: [record(5)]}, active={B})
    consumer.flow_active = False
    hand(consumer, {B: [record(5, B)]})
    assert consumer.taps["t"].take(100) == [] and consumer._tapped == {}


def test_tapped_records_below_the_read_offset_are_dropped_as_already_read():
    consumer = tapping_consumer()
    consumer._handed_seeks = {A: 1}
    consumer._read_offset = {A: 7}
    hand(consumer, {A: [record(6), record(7), record(8)]})
    assert [r.offset for c in consumer.taps["t"].take(100) for r in c.records] == [7, 8]


def test_offsets_missing_before_and_between_tapped_records_are_gaps_and_the_records_themselves_are_not():
    """A gap counts as acknowledged (compacted away, control records); a record must be processed first."""
    consumer = tapping_consumer()  # sought to 5: reading starts at 5
    asyncio.run(consumer._hand_to_taps({A: [record(7), record(8), record(11)]}, None))
    assert sorted((s.begin, s.end) for s in consumer._gap[A]) == [(5, 7), (9, 11)]
    consumer._acked[A] = [7, 8]
    assert consumer._new_offset(A) == 9, "the gap at the committed offset is committed past, not re-read"


def test_a_processed_chunk_is_acknowledged_and_committed_unless_its_partition_was_sought_since():
    consumer = tapping_consumer()
    hand(consumer, {A: [record(5), record(6)], B: [record(5, B)]})
    first, second = consumer.taps["t"].take(100)
    assert consumer.is_current(first)
    consumer._thread.seeks[B] = (2, 5)  # B sought back after its chunk was fetched: it is read again
    assert not consumer.is_current(second)
    assert consumer.ack_chunk(first) == 2 and consumer.ack_chunk(second) == 0
    assert consumer.ack_chunk(first) == 0, "acknowledged once"
    assert consumer._new_offset(A) == 7 and consumer._acked[B] == []


def test_a_chunk_of_an_earlier_generation_or_taken_while_rebalancing_is_not_current():
    consumer = tapping_consumer()
    hand(consumer, {A: [record(5)]})
    (chunk,) = consumer.taps["t"].take(100)
    consumer.flow_active = False
    assert not consumer.is_current(chunk)
    consumer.flow_active, consumer.app.consumer_generation_id = True, 2
    assert not consumer.is_current(chunk)


def test_a_full_tap_holds_the_fetch_until_the_agent_takes_or_a_rebalance_stops_the_flow():
    from dqhash.kafka.taps import Tap

    async def run(release):
        consumer = tapping_consumer()
        consumer.taps = {"t": Tap(maxsize=2)}
        stop = asyncio.Event()
        consumer.suspend_flow = stop

        async def wait_first(*coros):
            done, pending = await asyncio.wait(
                [asyncio.ensure_future(c) for c in coros], return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()

        consumer.wait_first = wait_first
        handing = asyncio.create_task(consumer._hand_to_taps({A: [record(5), record(6)]}, None))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not handing.done(), "the tap is full: the next fetch waits"
        if release == "agent":
            consumer.taps["t"].take(1)
        else:
            stop.set()
        await asyncio.wait_for(handing, 5)

    asyncio.run(run("agent"))
    asyncio.run(run("rebalance"))


def test_a_revocation_clears_the_taps(monkeypatch):
    consumer = tapping_consumer()
    hand(consumer, {A: [record(5)]})

    async def stock_revoked(self, revoked):
        pass

    monkeypatch.setattr(transport.stock.Consumer, "on_partitions_revoked", stock_revoked)
    asyncio.run(consumer.on_partitions_revoked({A}))
    assert consumer.taps["t"].size == 0
