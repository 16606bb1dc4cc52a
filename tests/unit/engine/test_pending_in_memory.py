"""More pairs pending than memory keeps (a cloud outage): each is still swept once, no window closes early, and
no verified-through time is ever too new."""

import itertools
import logging
from collections import Counter

import orjson

from dqhash.core.progress import Progress
from dqhash.engine import pending_refill
from dqhash.engine.reconciler import Reconciler
from dqhash.ops.dogstatsd import Metrics
from dqhash.settings import load
from tests.unit.engine.test_reconciler import T0, Clock, N, event, home, scan

PENDING = 5_000
#: the smallest DQHASH_PENDING_IN_MEMORY: 1,024 pending pairs a partition
IN_MEMORY = 4_096
MARK = T0 + 10**6


def _outage():
    """A reconciler that read PENDING on-prem events of partition 0 while the cloud topic lagged behind them."""
    settings = load(
        {"DQHASH_PARTITIONS": str(N), "DQHASH_WINDOW_SECONDS": "60", "DQHASH_GRACE_SECONDS": "30",
         "DQHASH_PENDING_IN_MEMORY": str(IN_MEMORY)}
    )  # fmt: skip
    clock, horizon = Clock(T0 + 2_000), {"ms": T0}  # the inputs lag: no deadline may be swept
    pairs: dict[bytes, bytes] = {}
    r = Reconciler(
        settings, pairs, Metrics("127.0.0.1", 9, [], enabled=False), scan, clock, lambda p, now: horizon["ms"]
    )
    keys = sorted(itertools.islice((k for k in (f"k{n}" for n in itertools.count()) if home(k) == 0), PENDING))
    # each commit time its own, in key order: the deadlines share a bucket, where the sweep goes in key order, so
    # the pairs it gives a verdict first are the oldest changes, the only ones the verified book keeps
    committed = {pk: T0 + 1_000 + offset for offset, pk in enumerate(keys)}
    for offset, pk in enumerate(keys):
        r.on_input("onprem", "topic1", 0, offset, pk.encode(), event(pk=pk, event_id=f"e-{pk}", ts=committed[pk]))
    r.verified.note(0, [Progress(r.catalog.default, "src:0", 1, MARK)])
    return r, clock, horizon, committed


def _sweep_after_the_outage(r, clock, horizon, committed):
    """Ticks until every pending pair has its verdict and its window closed; what each tick gave."""
    clock.now = horizon["ms"] = MARK  # the cloud topic is read again, past every deadline
    verdicts: Counter[str] = Counter()
    closed, times = [], []
    for tick in range(100):
        outs = r.on_tick(0, tick)
        for o in outs:
            if o.topic == "dq-audit":
                record = orjson.loads(o.value)
                verdicts[record["pk"]] += 1
                assert record["status"] == "MISSING_CLOUD", record
        closed += [(tick, len(verdicts), orjson.loads(o.value)) for o in outs if o.topic == "dq-metrics"
                   and orjson.loads(o.value).get("counts")]  # fmt: skip
        waiting = [committed[pk] for pk in committed if pk not in verdicts]
        times.append((r.verified.through(0)[r.catalog.default], min(waiting, default=MARK)))
        if closed and len(verdicts) == PENDING:
            return verdicts, closed, times
    raise AssertionError(f"after 100 ticks: {len(verdicts)} of {PENDING} verdicts, windows closed {closed}")


def test_a_cloud_outage_longer_than_memory_keeps_is_swept_whole_once_and_in_order(monkeypatch, caplog):
    monkeypatch.setattr(pending_refill, "REFILL_SCAN_BATCH", 1_000)  # a refill spans ticks with nothing indexed
    caplog.set_level(logging.INFO, "dqhash.engine.reconciler")
    r, clock, horizon, committed = _outage()
    assert r.index.cutoff(0) is not None  # memory let go of the latest pending pairs
    assert len(r.index) <= IN_MEMORY // N and r.verified._pending[0].count <= IN_MEMORY // N
    assert r.verified.through(0)[r.catalog.default] == T0 + 1_000  # the oldest pending change holds it back
    assert _published(r, T0 + 2_000) == {"through_ms": T0 + 1_000, "pending": 512, "pending_more": True}
    verdicts, closed, times = _sweep_after_the_outage(r, clock, horizon, committed)
    assert set(verdicts) == set(committed) and set(verdicts.values()) == {1}
    [(_, given, window)] = closed  # one window, closed once, after its last verdict
    assert given == PENDING and window["counts"] == {"MISSING_CLOUD": PENDING} and window["revision"] == 1
    # never too new; and here exact at every tick, for the book keeps the oldest changes and the sweep gives its
    # verdicts oldest first, so the oldest change let go of is the oldest pending
    assert all(through == truth for through, truth in times), times
    assert times[-1] == (MARK, MARK)
    assert r.index.cutoff(0) is None and len(r.index) == 0
    assert _published(r, MARK + 10_000) == {"through_ms": MARK, "pending": 0}
    said = [rec.getMessage() for rec in caplog.records]
    passes = [line for line in said if "reading the rest again from the pair table" in line]
    assert len(passes) >= PENDING // 512 - 1 and all(line.startswith("partition 0: more pairs") for line in passes)
    last = said[-1]
    assert last.endswith(" pending pairs read again from the pair table, all held in memory"), said[-3:]
    assert int(last.split()[2]) <= IN_MEMORY // N


def _published(r, now):
    [record] = r.verified.publish_due(0, now)
    times = orjson.loads(record.value)["tables"][r.catalog.default]
    return {k: v for k, v in times.items() if k != "through"}


def test_a_rebuild_of_more_pending_pairs_than_memory_keeps_is_bounded_and_misses_none(monkeypatch, caplog):
    monkeypatch.setattr(pending_refill, "REFILL_SCAN_BATCH", 1_000)
    r, clock, horizon, committed = _outage()
    with caplog.at_level(logging.WARNING, "dqhash.engine.reconciler"):
        r.rebuild(range(N))
    [said] = [rec.getMessage() for rec in caplog.records if "DQHASH_PENDING_IN_MEMORY" in rec.getMessage()]
    assert said.startswith("partitions [0] hold more pending pairs than DQHASH_PENDING_IN_MEMORY keeps")
    r.verified.note(0, [Progress(r.catalog.default, "src:0", 1, MARK)])
    assert len(r.index) <= IN_MEMORY // N and r.verified._pending[0].count <= IN_MEMORY // N
    assert r.verified.through(0)[r.catalog.default] == T0 + 1_000
    verdicts, closed, times = _sweep_after_the_outage(r, clock, horizon, committed)
    assert set(verdicts) == set(committed) and set(verdicts.values()) == {1}
    assert all(through <= truth for through, truth in times), times
