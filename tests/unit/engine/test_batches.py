"""Batches: the same records give the same table, outputs and counts whether applied one by one or together,
each key is written once per batch, and a batch cut short by a crash and replayed counts nothing twice."""

import orjson
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dqhash.core.records import SOURCE_CLOUD, SOURCE_ONPREM, SOURCE_REKEY, SOURCE_TICK, Input
from dqhash.core.window_keys import is_window_key
from dqhash.engine.reconciler import Reconciler
from dqhash.engine.staged import StagedTable, mapping_writer
from dqhash.ops.dogstatsd import Metrics
from dqhash.settings import load
from tests.unit.engine.test_reconciler import H1, H2, T0, Clock, N, cloud, event, home, scan

SETTINGS = load(
    {
        "DQHASH_PARTITIONS": str(N),
        "DQHASH_WINDOW_SECONDS": "60",
        "DQHASH_GRACE_SECONDS": "30",
        "DQHASH_RETENTION_SECONDS": "600",
        "DQHASH_TICK_SECONDS": "1",
    }
)


def reconciler(pairs, clock, write=None):
    return Reconciler(SETTINGS, pairs, Metrics("127.0.0.1", 9, [], enabled=False), scan, clock, write=write)


# A record: (kind, pk index, variant); offsets are given per (source, partition) in arrival order.
records = st.lists(
    st.tuples(
        st.sampled_from(["onprem", "cloud", "bad", "wrong_partition", "tick"]),
        st.integers(0, 5),
        st.sampled_from([H1, H2]),
    ),
    max_size=40,
)


def inputs_of(spec):
    offsets: dict = {}
    out = []
    for kind, i, digest in spec:
        pk = f"pk{i}"
        p = home(pk)
        if kind == "tick":
            source, value = SOURCE_TICK, None
        elif kind == "cloud":
            source, value = SOURCE_CLOUD, cloud(pk, digest)
        elif kind == "bad":
            source, value = SOURCE_ONPREM, b"{broken"
        else:
            window = 0 if digest == H1 else 60_000  # two windows, so a batch often changes several
            source, value = SOURCE_ONPREM, event(pk, event_id=f"e{len(out) % 3}", digest=digest, ts=T0 + 1_000 + window)
            if kind == "wrong_partition":
                p = (p + 1) % N
        offset = offsets[source, p] = offsets.get((source, p), -1) + 1
        topic = {SOURCE_TICK: "dq-ticks", SOURCE_CLOUD: "topic2", SOURCE_ONPREM: "topic1"}[source]
        out.append(Input(source, topic, p, offset, pk.encode(), value, [], T0 + 1_000))
    return out


def run_one_by_one(inputs, clock):
    pairs, outs = {}, []
    r = reconciler(pairs, clock)
    for record in inputs:
        outs += r.process([record])
    return pairs, outs


def without_ticks_reordered(inputs):
    """In a batch, ticks run after the data records: the one-by-one run gets them in that order too."""
    return [i for i in inputs if i.source != SOURCE_TICK] + [i for i in inputs if i.source == SOURCE_TICK]


@hsettings(max_examples=60)
@given(records, st.integers(1, 8))
def test_a_batch_gives_the_same_table_outputs_and_counts_as_its_records_one_by_one(spec, size):
    inputs = inputs_of(spec)
    clock = Clock(T0 + 90_000)
    batches = [without_ticks_reordered(inputs[i : i + size]) for i in range(0, len(inputs), size)]
    expected_pairs, expected_outs = run_one_by_one([i for b in batches for i in b], Clock(T0 + 90_000))
    pairs, outs = {}, []
    r = reconciler(pairs, clock)
    for batch in batches:
        outs += r.process(batch)
    assert pairs == expected_pairs
    assert outs == expected_outs


def test_each_key_is_written_once_per_batch_windows_before_pairs():
    writes = []
    pairs = {}

    def write(partition, items):
        writes.append((partition, [key for key, _ in items]))
        return mapping_writer(pairs)(partition, items)

    r = reconciler(pairs, Clock(T0 + 1_000), write)
    p = home("k1")
    outs = r.process(
        [
            Input(SOURCE_ONPREM, "topic1", p, 0, b"k1", event("k1", "e1")),
            Input(SOURCE_ONPREM, "topic1", p, 1, b"k1", event("k1", "e1")),  # a replay: DUPLICATES
            Input(SOURCE_CLOUD, "topic2", p, 0, b"k1", cloud("k1")),
        ]
    )
    assert [orjson.loads(o.value)["status"] for o in outs if o.topic == "dq-audit"] == ["MATCH"]
    [(partition, keys)] = writes
    assert partition == p and len(keys) == len(set(keys)) == 2
    assert is_window_key(keys[0]) and keys[1] == b"k1"  # counts first: if the state survived, so did they
    assert orjson.loads(pairs[keys[0]])["counts"] == {"DUPLICATES": 1, "MATCH": 1}


def test_a_batch_replayed_after_a_crash_between_its_window_and_pair_writes_counts_once():
    pairs = {}

    def crash_after_windows(partition, items):
        mapping_writer(pairs)(partition, [(k, v) for k, v in items if is_window_key(k)])
        raise OSError("killed after the window records reached the changelog")

    p = home("k1")
    batch = [
        Input(SOURCE_ONPREM, "topic1", p, 0, b"k1", event("k1", "e1")),
        Input(SOURCE_CLOUD, "topic2", p, 0, b"k1", cloud("k1")),
        Input(
            SOURCE_REKEY,
            "dq-rekeyed",
            p,
            0,
            b"k2",
            event("k2", "e2"),
            [("dq.side", b"onprem"), ("dq.origin", b"onprem:0:9")],
        ),
    ]
    clock = Clock(T0 + 1_000)
    try:
        reconciler(pairs, clock, crash_after_windows).process(batch)
    except OSError:
        pass
    assert b"k1" not in pairs and any(is_window_key(k) for k in pairs)
    outs = reconciler(pairs, clock).process(batch)  # Kafka redelivers the uncommitted batch
    assert [orjson.loads(o.value)["status"] for o in outs if o.topic == "dq-audit"] == ["MATCH"]
    [window] = [orjson.loads(v) for k, v in pairs.items() if is_window_key(k)]
    assert window["counts"] == {"MATCH": 1}


def test_staged_reads_each_key_once_and_deletes_are_written_as_deletes():
    reads = []
    table = {b"a": b"[1,null,null,[],5]"}

    def read(partition, key):
        reads.append(key)
        return table.get(key)

    staged = StagedTable(read, mapping_writer(table))
    assert staged.state(0, b"a").updated_ms == 5 and staged.state(0, b"a").updated_ms == 5
    assert staged.state(0, b"missing") is None and staged.state(0, b"missing") is None
    assert reads == [b"a", b"missing"]
    staged.put_state(0, b"a", None)
    assert staged.state(0, b"a") is None and staged.is_staged(b"a")
    assert staged.flush() == [] and table == {}
