"""A backlog of due deadlines is swept in bounded batches, and no window closes before its last verdict."""

import itertools

import orjson

from dqhash.core.deadlines import DeadlineIndex
from dqhash.core.partitioning import partition_for
from dqhash.engine import reconciler as reconciler_module
from dqhash.engine.reconciler import Reconciler
from dqhash.ops.dogstatsd import Metrics
from dqhash.settings import load
from tests.unit.engine.test_reconciler import N, scan

T0 = 1_714_564_800_000


def test_pop_due_takes_at_most_what_it_is_asked_and_leaves_the_rest_due():
    index = DeadlineIndex(resolution_ms=1000)
    for n in range(25):
        index.add(0, f"k{n}", T0 + (n % 3) * 1000)
    first = index.pop_due(0, T0 + 5000, most=10)
    assert len(first) == 10 and index.next_due(0) is not None and index.next_due(0) <= T0 + 5000
    rest = index.pop_due(0, T0 + 5000, most=10) + index.pop_due(0, T0 + 5000, most=10)
    assert sorted(first + rest) == sorted(f"k{n}" for n in range(25)) and index.next_due(0) is None
    assert index.pop_due(0, T0 + 5000) == []


def test_a_backlog_is_swept_over_several_ticks_and_its_window_waits_for_the_last_verdict(monkeypatch):
    monkeypatch.setattr(reconciler_module, "SWEEP_BATCH", 100)
    settings = load({"DQHASH_PARTITIONS": str(N), "DQHASH_WINDOW_SECONDS": "60", "DQHASH_GRACE_SECONDS": "30"})
    clock = {"now": T0 + 1_000}
    r = Reconciler(settings, {}, Metrics("127.0.0.1", 9, [], enabled=False), scan, lambda: clock["now"])
    keys = [k for k in (f"k{n}" for n in range(1000)) if partition_for(k, N) == 0][:250]
    for offset, pk in enumerate(keys):
        event = {"event_id": f"e-{pk}", "hash_onprem": "11" * 32, "partitionColumns": [{"type": "PK", "value": pk}],
                 "event_ts": T0 + 1_000, "action": "UPDATE"}  # fmt: skip
        r.on_input("onprem", "topic1", 0, offset, pk.encode(), orjson.dumps(event))
    clock["now"] = T0 + 200_000  # every deadline is due: no cloud answer came
    ticks = itertools.count()
    verdicts, windows = [], []
    for _ in range(3):
        outs = r.on_tick(0, next(ticks))
        verdicts.append(sum(1 for o in outs if o.topic == "dq-audit"))
        windows.append([orjson.loads(o.value) for o in outs if o.topic == "dq-metrics"])
    assert verdicts == [100, 100, 50]  # bounded batches, every pair decided once
    assert windows[0] == [] and windows[1] == []  # the window waits for its last verdict
    [closed] = windows[2]
    assert closed["counts"] == {"MISSING_CLOUD": 250} and closed["revision"] == 1
